"""The devtools view: time travel, the read-only SQL console, the live queries list."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from nicegui import ElementFilter, ui
from nicegui.elements.mixins.text_element import TextElement
from nicegui.elements.upload_files import SmallFileUpload
from nicegui.testing.user import User

from pjai.app import DataDir, Personas
from pjai.app.reads import devtools as reads
from pjai.sync.server.hub import Hub
from pjai.sync.server.log import MemoryLog
from pjai.web import WebApp
from tests.sync.servers import serving
from tests.web.conftest import simulated, until

pytestmark = pytest.mark.anyio


def texts(user: User, marker: str) -> str:
    """The text of every text element (label, expansion, badge) in the element marked ``marker``."""
    with user:
        [area] = user.find(marker=marker).elements
        found = [area, *area.descendants()]
        return " ".join(text.text for text in found if isinstance(text, TextElement))


async def test_the_console_shows_a_selects_rows(web: WebApp) -> None:
    web.services.personas.create("Ada")
    async with simulated(web) as user:
        await user.open("/devtools")
        await user.should_see(marker="sql-console")
        user.find(marker="sql-console").clear().type("SELECT name FROM personas")
        user.find(marker="sql-run").click()
        await user.should_see("1 row in")
        await until(
            lambda: "Ada" in str(_table_rows(user, "sql-result")),
            'lambda: "Ada" in str(_table_rows(user, "sql-result"))',
        )


def _table_rows(user: User, marker: str) -> list[dict[str, object]]:
    with user:
        [area] = user.find(marker=marker).elements
        return [row for t in area.descendants() if isinstance(t, ui.table) for row in t.rows]


async def test_the_console_refuses_a_write_and_says_why(web: WebApp) -> None:
    ada = web.services.personas.create("Ada")
    async with simulated(web) as user:
        await user.open("/devtools")
        await user.should_see(marker="sql-console")
        user.find(marker="sql-console").clear().type("PRAGMA query_only=0; DELETE FROM personas")
        user.find(marker="sql-run").click()
        await user.should_see("only reading is allowed here")
    assert web.services.personas.get(ada.id).name == "Ada"


async def test_time_travel_to_an_early_position_shows_its_counts_and_the_diff(
    web: WebApp,
) -> None:
    personas = web.services.personas
    personas.create("Ada")
    early = web.manager.head()
    personas.create("Grace")
    personas.create("Linus")
    async with simulated(web) as user:
        await user.open("/devtools")
        await user.should_see(marker="timetravel-position")
        await until(
            lambda: "personas 3" in texts(user, "timetravel-counts"),
            'lambda: "personas 3" in texts(user, "timetravel-counts")',
        )
        with user:
            [number] = user.find(marker="timetravel-position").elements
            assert isinstance(number, ui.number)
            number.value = early
        await until(
            lambda: "personas 1" in texts(user, "timetravel-counts"),
            'lambda: "personas 1" in texts(user, "timetravel-counts")',
        )
        assert f"event {early}: v1.PersonaCreated" in texts(user, "timetravel-event")
        diff = texts(user, "timetravel-diff")
        assert "personas: 2 added, 0 removed, 0 changed" in diff
        assert "Grace" in diff
        assert "Linus" in diff


async def test_the_diff_to_now_follows_new_commits(web: WebApp) -> None:
    personas = web.services.personas
    ada = personas.create("Ada")
    async with simulated(web) as user:
        await user.open("/devtools")
        await until(
            lambda: "no change" in texts(user, "timetravel-diff"),
            'lambda: "no change" in texts(user, "timetravel-diff")',
        )
        personas.update(ada.id, name="Ada Lovelace")
        await until(
            lambda: "name: Ada → Ada Lovelace" in texts(user, "timetravel-diff"),
            'lambda: "name: Ada → Ada Lovelace" in texts(user, "timetravel-diff")',
        )


async def test_the_live_queries_list_shows_the_pages_own_queries(web: WebApp) -> None:
    async with simulated(web) as user:
        await user.open("/devtools")
        await user.should_see(marker="live-queries")
        await until(
            lambda: "pjai_eventlog" in str(_table_rows(user, "live-queries")),
            'lambda: "pjai_eventlog" in str(_table_rows(user, "live-queries"))',
        )
        rows = _table_rows(user, "live-queries")
        logged = next(row for row in rows if "max(global_seq)" in str(row["sql"]))
        assert int(str(logged["subscribers"])) >= 1
        assert int(str(logged["runs"])) >= 1
        assert str(logged["last"]).endswith("ms")


async def test_the_event_log_lists_new_events_with_their_status(web: WebApp) -> None:
    async with simulated(web) as user:
        await user.open("/devtools")
        await user.should_see("the log is empty")
        web.services.personas.create("Ada")
        await until(
            lambda: "v1.PersonaCreated" in texts(user, "event-log"),
            'lambda: "v1.PersonaCreated" in texts(user, "event-log")',
        )
        assert "confirmed" in texts(user, "event-log")


async def test_the_page_follows_the_store_switched_off_and_on(web: WebApp) -> None:
    async with simulated(web) as user:
        await user.open("/devtools")
        await user.should_see("the log is empty")
        web.manager.set_flag("use_livestore", False)
        await user.should_see(marker="store-off", retries=50)
        web.manager.set_flag("use_livestore", True)
        await user.should_see(marker="event-log", retries=50)
        web.services.personas.create("Ada")
        await until(
            lambda: "v1.PersonaCreated" in texts(user, "event-log"),
            "the event log of the store open now",
        )


def test_a_past_state_is_replayed_once_while_only_now_moves(web: WebApp) -> None:
    personas = web.services.personas
    personas.create("Ada")
    early = web.manager.head()
    personas.create("Grace")
    past = reads.PastStates(web.manager)
    first = past.view(early, "personas")
    assert first.counts["personas"] == 1
    assert len(first.changes.tables["personas"].added) == 1
    personas.create("Linus")
    second = past.view(early, "memories")
    assert second.counts == first.counts
    assert len(second.changes.tables["personas"].added) == 2
    assert past.replays == 1
    past.view(early + 1, "personas")
    assert past.replays == 2
    past.close()


async def test_an_archive_exported_here_restores_through_the_import_form(
    web: WebApp, tmp_path: Path
) -> None:
    web.services.personas.create("Ada", activate=True)
    target = tmp_path / "restored"
    async with simulated(web) as user:
        await user.open("/devtools")
        user.find("Export and import").click()
        user.find(marker="export").click()
        downloaded = await user.download.next(timeout=10)
        assert downloaded.content[:2] == b"PK"  # a zip
        user.find(marker="import-target").type(str(target))
        with user:
            (upload,) = ElementFilter(kind=ui.upload)
        await upload.handle_uploads(
            [
                SmallFileUpload(
                    name="a.zip", content_type="application/zip", _data=downloaded.content
                )
            ]
        )
        await user.should_see("Imported", retries=50)
        await upload.handle_uploads(
            [
                SmallFileUpload(
                    name="a.zip", content_type="application/zip", _data=downloaded.content
                )
            ]
        )
        await user.should_see("Not imported", retries=50)  # the directory is not empty now
    with DataDir(target).open() as manager:
        assert [p.name for p in Personas(manager).list()] == ["Ada"]


async def test_the_app_connects_its_own_sync_client_and_disconnects_it(tmp_path: Path) -> None:
    hub = Hub(MemoryLog(), None, poll_interval=0.05)
    data = DataDir(tmp_path / "data", environ={"PJAI_FLAG_SYNC": "true"})
    async with serving(hub) as url:
        with WebApp(data) as web:
            async with simulated(web) as user:
                await user.open("/devtools")
                await user.should_see(marker="sync-connect")
                user.find(marker="sync-url").type(url)
                user.find(marker="sync-name").type("laptop")
                user.find(marker="sync-connect").click()
                await user.should_see(marker="sync-connected", retries=50)
                assert "syncs through ws://" in texts(user, "sync-connection")
                web.services.personas.create("Ada")
                await until(lambda: hub_has_events(hub), "the persona pushed to the server")
                user.find(marker="sync-disconnect").click()
                await user.should_see(marker="sync-connect", retries=50)
            assert web.sync.client is None
            assert json.loads(data.sync_status_path.read_text())["state"] == "stopped"


def hub_has_events(hub: Hub) -> bool:
    return hub.log.head("default").global_seq > 0


async def test_a_standalone_directory_offers_no_connect(web: WebApp) -> None:
    async with simulated(web) as user:
        await user.open("/devtools")
        await user.should_see(marker="sync-connection")
        assert "standalone" in texts(user, "sync-connection")
        await user.should_not_see(marker="sync-connect")
