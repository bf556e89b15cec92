"""The devtools view: time travel, the read-only SQL console, the live queries list."""

from __future__ import annotations

import contextlib
import json
import tempfile
import threading
from pathlib import Path
from typing import Any

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
from pjai.web.views import devtools_system
from tests.sync.servers import serving
from tests.web.conftest import by_testid, simulated, until

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


async def test_the_console_and_time_travel_show_direction_overrides_as_marks(web: WebApp) -> None:
    web.services.personas.create("Ada \u202eevil")
    async with simulated(web) as user:
        await user.open("/devtools")
        await until(
            lambda: (
                "Ada ⟦RLO⟧evil" in texts(user, "timetravel-diff")
                or "Ada ⟦RLO⟧evil" in str(_table_rows(user, "sql-result"))
                or bool(_tt_rows(user))
            ),
            "time travel's first state",
        )
        assert "Ada ⟦RLO⟧evil" in str(_tt_rows(user))
        user.find(marker="sql-console").clear().type("SELECT name FROM personas")
        user.find(marker="sql-run").click()
        await until(
            lambda: "Ada ⟦RLO⟧evil" in str(_table_rows(user, "sql-result")),
            "the name with its override as a mark",
        )
        assert "\u202e" not in str(_table_rows(user, "sql-result"))


def _tt_rows(user: User) -> list[dict[str, object]]:
    with user:
        return [
            row
            for t in user.client.elements.values()
            if isinstance(t, ui.table) and t.props.get("data-testid") == "timetravel-rows"
            for row in t.rows
        ]


async def test_a_position_beyond_the_head_is_taken_as_the_head(web: WebApp) -> None:
    web.services.personas.create("Ada")
    web.services.personas.create("Grace")
    head = web.manager.head()
    async with simulated(web) as user:
        await user.open("/devtools")
        await user.should_see(f"head: event {head}", retries=50)
        with user:
            [number] = user.find(marker="timetravel-position").elements
            assert isinstance(number, ui.number)
            assert number.max == head
            number.value = 999
            await until(lambda: number.value == head, "the position back at the head")
            number.sanitize()  # what leaving the field does
            assert number.value == head
            number.value = 0
            await until(lambda: number.value == 0, "the first position")
            number.sanitize()
            assert number.value == 0


async def test_a_compare_position_that_is_no_number_is_said(web: WebApp) -> None:
    web.services.personas.create("Ada")
    async with simulated(web) as user:
        await user.open("/devtools")
        await user.should_see(marker="timetravel-compare")
        with user:
            [number] = user.find(marker="timetravel-compare").elements
            assert isinstance(number, ui.number)
            # What a page script may send: NiceGUI keeps it, then fails to echo it back,
            # so the next refresh (a commit) reads it.
            with contextlib.suppress(ValueError):
                number.value = float("nan")
        web.services.personas.create("Grace")
        await until(
            lambda: "give a whole number" in texts(user, "timetravel-counts"),
            'lambda: "give a whole number" in texts(user, "timetravel-counts")',
        )


async def sync_switch(user: User) -> ui.switch:
    """The devtools' switch of the ``sync`` flag, once the page shows it."""
    await user.open("/devtools")
    await until(lambda: bool(by_testid(user, "flag-sync")), "the flags")
    switch = by_testid(user, "flag-sync")
    assert isinstance(switch, ui.switch)
    return switch


async def test_a_refused_flag_says_why_and_its_switch_is_put_back(
    web: WebApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    polls = threading.Semaphore(0)
    real_states = devtools_system.flag_states
    real_open = DataDir.open

    def states(*args: Any) -> Any:
        polls.release()
        return real_states(*args)

    def opening(self: DataDir, *args: Any, **kwargs: Any) -> Any:
        # The flags are read again while the change runs, the flags file holding the
        # new value until the change is refused: the switch being flipped stays.
        for _ in range(2):
            assert polls.acquire(timeout=10)
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(devtools_system, "flag_states", states)
    monkeypatch.setattr(DataDir, "open", opening)
    async with simulated(web) as user:
        switch = await sync_switch(user)
        while polls.acquire(blocking=False):
            pass
        with user.client:
            switch.value = True
        await user.should_see("a store's mode is fixed when it is made", retries=100)
        await user.should_not_see("has been deleted")
        assert by_testid(user, "flag-sync") is switch  # not drawn again
        await until(lambda: switch.value is False, "the switch put back")
    assert web.data_dir.flags().state("sync").value is False


async def test_a_read_of_the_flags_that_ends_after_a_refused_change_is_not_drawn(
    web: WebApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A poll reads the flags file while it holds the refused value, and comes back
    # only after the change has ended: what it read is not drawn either.
    read_it, later = threading.Semaphore(0), threading.Semaphore(0)
    changing, over = threading.Event(), threading.Event()
    real_states, real_set, real_open = (
        devtools_system.flag_states,
        devtools_system.set_flag,
        DataDir.open,
    )

    def states(*args: Any) -> Any:
        if over.is_set():
            later.release()  # a read begun after the change: the one before it is over
        found = real_states(*args)
        if changing.is_set() and not over.is_set():
            read_it.release()
            over.wait(timeout=10)
        return found

    def opening(self: DataDir, *args: Any, **kwargs: Any) -> Any:
        changing.set()  # the flags file holds the new value
        assert read_it.acquire(timeout=10)
        return real_open(self, *args, **kwargs)

    def set_flag(*args: Any, **kwargs: Any) -> Any:
        try:
            return real_set(*args, **kwargs)
        finally:
            over.set()

    monkeypatch.setattr(devtools_system, "flag_states", states)
    monkeypatch.setattr(devtools_system, "set_flag", set_flag)
    monkeypatch.setattr(DataDir, "open", opening)
    async with simulated(web) as user:
        switch = await sync_switch(user)
        with user.client:
            switch.value = True
        await user.should_see("a store's mode is fixed when it is made", retries=100)
        await until(lambda: switch.value is False, "the switch put back")
        await until(lambda: later.acquire(blocking=False), "a read after the change")
        assert by_testid(user, "flag-sync") is switch  # not drawn again
    assert web.data_dir.flags().state("sync").value is False


async def test_with_the_store_off_its_flag_stays_to_switch_it_back_on(web: WebApp) -> None:
    web.manager.set_flag("use_livestore", False)
    async with simulated(web) as user:
        await user.open("/devtools")
        await user.should_see(marker="store-off", retries=50)
        await until(lambda: bool(by_testid(user, "flag-use_livestore")), "the flags")
        switch = by_testid(user, "flag-use_livestore")
        assert isinstance(switch, ui.switch)
        assert switch.value is False
        with user:
            switch.value = True
        await user.should_see(marker="event-log", retries=100)
    assert web.manager.use_livestore


async def test_a_refused_archive_is_named_by_its_own_name(web: WebApp, tmp_path: Path) -> None:
    async with simulated(web) as user:
        await user.open("/devtools")
        user.find("Export and import").click()
        user.find(marker="import-target").type(str(tmp_path / "restored"))
        with user:
            (upload,) = ElementFilter(kind=ui.upload)
        garbage = SmallFileUpload(name="garbage.zip", content_type="application/zip", _data=b"x")
        await upload.handle_uploads([garbage])
        await user.should_see("Not imported: garbage.zip is not a PJai archive", retries=50)
        (outcome,) = user.find(marker="import-outcome").elements
        assert tempfile.gettempdir() not in outcome.text  # type: ignore[attr-defined]
