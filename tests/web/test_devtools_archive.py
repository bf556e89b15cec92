"""Export and import from the devtools under load: tabs asking at once (no browser)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from nicegui import ElementFilter, ui
from nicegui.elements.upload_files import SmallFileUpload
from nicegui.testing.user import User

from pjai.app import DataDir, Personas, export_archive
from pjai.web import WebApp
from pjai.web.views import devtools_archive
from tests.web.conftest import (
    LOOP_THREADS,
    Held,
    another_tab,
    shown,
    simulated,
    told,
    until,
)

pytestmark = pytest.mark.anyio


async def open_archives(tab: User) -> None:
    """Open the devtools' Export and import tab on ``tab``."""
    await tab.open("/devtools")
    tab.find("Export and import").click()
    await tab.should_see(marker="export")


async def test_tabs_exporting_at_once_leave_other_views_off_loop_work_going(
    web: WebApp, hold: Callable[[object, str], Held]
) -> None:
    web.services.personas.create("Ada")
    exports = hold(devtools_archive, "export_archive")
    async with simulated(web) as first:
        tabs = [first, *(another_tab(first) for _ in range(LOOP_THREADS - 1))]
        for tab in tabs:
            await open_archives(tab)
            tab.find(marker="export").click()
        await until(
            lambda: exports.started + len(told(tabs, "busy")) == len(tabs),
            "every export started or refused",
        )
        dashboard = another_tab(first)
        await dashboard.open("/")
        await until(lambda: shown(dashboard, "store-status") == "ok", "the health card")
        assert not exports.release.is_set()  # while the admitted export still runs
        assert exports.started == web.exports.threads == 1
        refusals = told([*tabs, dashboard], "busy")
        assert len(refusals) == len(tabs) - 1
        assert refusals[0] == (
            "Not exported: archive export is busy with 1 export; try again when it ends"
        )
        exports.release.set()

        def downloads() -> int:
            return sum(len(tab.download.http_responses) for tab in [*tabs, dashboard])

        await until(lambda: downloads() == 1, "the admitted export's download")
        await until(lambda: web.exports.running == 0, "the export to end")
        tabs[-1].find(marker="export").click()
        await until(lambda: downloads() == 2, "an export once the first ended")


def archive_of(web: WebApp, folder: Path) -> bytes:
    """An archive of ``web``'s store, written in ``folder``."""
    path = folder / "ada.zip"
    export_archive(web.manager, path)
    return path.read_bytes()


async def upload(tab: User, archive: bytes) -> None:
    """Choose ``archive`` in ``tab``'s import form (the import starts at once)."""
    with tab:
        (uploader,) = ElementFilter(kind=ui.upload, local_scope=False)
    chosen = SmallFileUpload(name="ada.zip", content_type="application/zip", _data=archive)
    await uploader.handle_uploads([chosen])


async def test_one_import_runs_at_a_time_across_tabs(
    web: WebApp, hold: Callable[[object, str], Held], tmp_path: Path
) -> None:
    web.services.personas.create("Ada")
    archive = archive_of(web, tmp_path)
    target = tmp_path / "restored"
    imports = hold(devtools_archive, "import_archive")
    async with simulated(web) as first:
        tabs = [first, another_tab(first)]
        for tab in tabs:
            await open_archives(tab)
            tab.find(marker="import-target").type(str(target))  # the same directory
        await upload(tabs[0], archive)
        await until(lambda: imports.started == 1, "the first import to start")
        await upload(tabs[1], archive)
        await until(lambda: "busy" in shown(tabs[1], "import-outcome"), "the refusal")
        assert imports.started == 1
        assert shown(tabs[1], "import-outcome") == (
            "Not imported: archive import is busy with 1 import; try again when it ends"
        )
        imports.release.set()
        await until(
            lambda: shown(tabs[0], "import-outcome").startswith("Imported 1 events"),
            "the first import's outcome",
        )
    with DataDir(target).open() as manager:
        assert [p.name for p in Personas(manager).list()] == ["Ada"]
