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
from tests.web.conftest import Held, another_tab, long_work_from_many_tabs, shown, simulated, until

pytestmark = pytest.mark.anyio


async def open_archives(tab: User) -> None:
    """Open the devtools' Export and import tab on ``tab``."""
    await tab.open("/devtools")
    tab.find("Export and import").click()
    await tab.should_see(marker="export")


def export(tab: User) -> None:
    """Press Export on ``tab``'s open Export and import tab."""
    tab.find(marker="export").click()


async def open_and_export(tab: User) -> None:
    """Open the devtools' Export and import tab on ``tab`` and press Export."""
    await open_archives(tab)
    export(tab)


def downloads(tab: User) -> int:
    """How many archives ``tab`` downloaded (a download, as a notification, may reach
    another tab than the one that asked)."""
    return len(tab.download.http_responses)


async def test_tabs_exporting_at_once_leave_other_views_off_loop_work_going(
    web: WebApp, hold: Callable[[object, str], Held]
) -> None:
    web.services.personas.create("Ada")
    assert web.exports.threads == 1
    await long_work_from_many_tabs(
        web,
        hold(devtools_archive, "export_archive"),
        web.exports,
        start=open_and_export,
        refused_in=None,
        refusal="Not exported: archive export is busy with 1 export; try again when it ends",
        finished=downloads,
        again=export,
    )


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
