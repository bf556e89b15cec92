"""The audit trail under a simulated user: the log newest first with its total, each
filter, the text search, live rows, an event's payload, conflicts with the event that
won, configuration changes, and the store switched off."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from nicegui import ui
from nicegui.testing.user import User
from nicegui.testing.user_interaction import UserInteraction

from pjai.app import DataDir, set_flag
from pjai.app.reads import audit as reads
from pjai.app.reads.audit import AuditFilter
from pjai.schema import PersonaDeleted
from pjai.schema.records import acting_as
from pjai.schema.types import utc_now
from pjai.web import WebApp
from pjai.web.views.audit_table import AuditTable, summary
from tests.helpers import history, memory, persona
from tests.web.conftest import by_testid, set_value, simulated, until

pytestmark = pytest.mark.anyio


# -- helpers ---------------------------------------------------------------------------


def _table(user: User) -> AuditTable:
    table = by_testid(user, "audit-table")
    assert isinstance(table, AuditTable)
    return table


def _names(user: User) -> list[str]:
    return [row["name"] for row in _table(user).rows]


def _total(user: User) -> int:
    label = by_testid(user, "audit-total")
    assert isinstance(label, ui.label)
    return int(label.text)


async def _shows(user: User, names: list[str], total: int | None = None) -> None:
    total = len(names) if total is None else total
    await until(
        lambda: _names(user) == names and _total(user) == total,
        f"the table shows {names} of {total}",
    )


def _only(user: User, outcome: str, n: int) -> Callable[[], bool]:
    """Whether the table shows ``n`` events, all with ``outcome``."""
    return lambda: (
        len(_names(user)) == _total(user) == n
        and {row["outcome"] for row in _table(user).rows} == {outcome}
    )


def _logged(web: WebApp, persona_id: str | None = None) -> list[str]:
    """The names of the live log's events (about ``persona_id``), newest first."""
    assert web.manager.store is not None
    return [
        e.record.name
        for e in web.manager.store.events()
        if persona_id is None or f'"persona_id":"{persona_id}"' in bytes(e.record.args).decode()
    ][::-1]


async def _open(user: User) -> None:
    await user.open("/audit")
    await user.should_see(marker="audit-table")


# -- the log ---------------------------------------------------------------------------


async def test_the_log_lists_events_newest_first_with_a_total(web: WebApp) -> None:
    ada = web.services.personas.create("Ada", activate=True)
    web.services.memories.add(ada.id, "Walks at dawn")
    async with simulated(web) as user:
        await _open(user)
        await _shows(user, _logged(web))
        assert _names(user)[0] == "v1.MemoryAdded"
        row = _table(user).rows[0]
        assert row["persona"] == "Ada"
        assert row["outcome"] == "confirmed"
        assert "Walks at dawn" in row["summary"]
        assert row["position"] == f"e{len(_logged(web))}"


async def test_a_commit_from_python_appears_without_a_reload(web: WebApp) -> None:
    ada = web.services.personas.create("Ada")
    async with simulated(web) as user:
        await _open(user)
        await _shows(user, _logged(web))
        web.services.memories.add(ada.id, "Noted while the page was open")
        await _shows(user, _logged(web))
        assert _names(user)[0] == "v1.MemoryAdded"


async def test_the_log_pages_on_the_server(web: WebApp) -> None:
    web.manager.commit(persona("p1"), *(memory(f"m{i}") for i in range(30)))
    async with simulated(web) as user:
        await _open(user)
        await until(lambda: _total(user) == 31 and len(_names(user)) == 25, "a first page")
        table = _table(user)
        UserInteraction(user, {table}, None).trigger(
            "request", {"pagination": {**table.pagination, "page": 2}}
        )
        await until(lambda: len(_names(user)) == 6, "the second page")
        assert _table(user).rows[-1]["name"] == "v1.PersonaCreated"


# -- the filters -----------------------------------------------------------------------


async def test_the_persona_filter_shows_its_history_newest_first(web: WebApp) -> None:
    ada = web.services.personas.create("Ada")
    grace = web.services.personas.create("Grace")
    web.services.memories.add(ada.id, "Ada's first")
    web.services.memories.add(grace.id, "Grace's only")
    web.services.personas.activate(ada.id)
    async with simulated(web) as user:
        await _open(user)
        await _shows(user, _logged(web))
        set_value(user, "audit-persona", ada.id)
        history = _logged(web, ada.id)
        assert history[:2] == ["v1.PersonaActivated", "v1.MemoryAdded"]
        await _shows(user, history)
        assert {row["persona"] for row in _table(user).rows} == {"Ada"}


async def test_the_type_filter_narrows_to_those_events(web: WebApp) -> None:
    ada = web.services.personas.create("Ada")
    web.services.memories.add(ada.id, "One")
    web.services.memories.add(ada.id, "Two")
    async with simulated(web) as user:
        await _open(user)
        set_value(user, "audit-type", ["v1.MemoryAdded"])
        await _shows(user, ["v1.MemoryAdded", "v1.MemoryAdded"])
        set_value(user, "audit-type", ["v1.MemoryAdded", "v1.PersonaCreated"])
        await _shows(user, ["v1.MemoryAdded", "v1.MemoryAdded", "v1.PersonaCreated"])


async def test_the_time_filter_keeps_the_events_of_the_range(web: WebApp) -> None:
    earlier, later = utc_now() - timedelta(days=3), utc_now() - timedelta(days=1)
    upstream = history(
        [(persona("p1"), earlier), (memory("m1"), earlier), (memory("m2"), later)],
        client_id="elsewhere",
    )
    assert web.manager.store is not None
    web.manager.store.ingest(upstream)
    day = later.strftime("%Y-%m-%d")
    async with simulated(web) as user:
        await _open(user)
        await _shows(user, _logged(web))
        set_value(user, "audit-from", day)
        UserInteraction(user, {by_testid(user, "audit-from")}, None).trigger("keydown.enter")
        await _shows(user, ["v1.MemoryAdded"])
        assert "m2" in _table(user).rows[0]["summary"]
        set_value(user, "audit-from", "")
        set_value(user, "audit-to", earlier.strftime("%Y-%m-%d"))
        UserInteraction(user, {by_testid(user, "audit-to")}, None).trigger("keydown.enter")
        await _shows(user, ["v1.MemoryAdded", "v1.PersonaCreated"])


async def test_the_client_filter_keeps_one_installations_events(web: WebApp) -> None:
    assert web.manager.store is not None
    web.manager.store.ingest(history([persona("p1"), memory("m1")], client_id="laptop"))
    web.services.memories.add("p1", "Added here")
    async with simulated(web) as user:
        await _open(user)
        await _shows(user, _logged(web))
        set_value(user, "audit-client", "laptop")
        await _shows(user, ["v1.MemoryAdded", "v1.PersonaCreated"])
        assert {row["client"] for row in _table(user).rows} == {"laptop"}
        set_value(user, "audit-client", web.manager.store.client_id)
        await _shows(user, ["v1.MemoryAdded"])


async def test_text_search_finds_an_event_by_a_word_in_its_payload(web: WebApp) -> None:
    ada = web.services.personas.create("Ada")
    web.services.memories.add(ada.id, "Likes green tea")
    web.services.memories.add(ada.id, "Walks at dawn")
    async with simulated(web) as user:
        await _open(user)
        await _shows(user, _logged(web))
        set_value(user, "audit-search", "GREEN")
        UserInteraction(user, {by_testid(user, "audit-search")}, None).trigger("keydown.enter")
        await _shows(user, ["v1.MemoryAdded"])
        assert "Likes green tea" in _table(user).rows[0]["summary"]
        # LIKE's wildcards are searched for as they are.
        set_value(user, "audit-search", "%")
        UserInteraction(user, {by_testid(user, "audit-search")}, None).trigger("keydown.enter")
        await _shows(user, [])


async def test_clicking_a_row_opens_its_full_payload(web: WebApp) -> None:
    ada = web.services.personas.create("Ada")
    added = web.services.memories.add(ada.id, "Likes green tea", name="Tea").memory
    async with simulated(web) as user:
        await _open(user)
        await _shows(user, _logged(web))
        row = _table(user).rows[0]
        UserInteraction(user, {_table(user)}, None).trigger("rowClick", [{}, {"id": row["id"]}, 0])
        await user.should_see(marker="audit-detail")
        code = by_testid(user, "audit-payload")
        assert isinstance(code, ui.code)
        assert f'"memory_id": "{added.id}"' in code.content
        assert '"content": "Likes green tea"' in code.content
        store = web.manager.store
        assert store is not None
        await user.should_see(store.session_id)  # the session that wrote it


async def test_persona_names_and_payloads_show_direction_overrides_as_marks(web: WebApp) -> None:
    ada = web.services.personas.create("Ada \u202eevil")
    web.services.memories.add(ada.id, "tea \u202eevil")
    async with simulated(web) as user:
        await _open(user)
        await _shows(user, _logged(web))
        row = _table(user).rows[0]
        assert row["persona"] == "Ada ⟦RLO⟧evil"
        assert "tea ⟦RLO⟧evil" in row["summary"]
        persona = by_testid(user, "audit-persona")
        assert isinstance(persona, ui.select)
        assert persona.options == {ada.id: "Ada ⟦RLO⟧evil"}
        UserInteraction(user, {_table(user)}, None).trigger("rowClick", [{}, {"id": row["id"]}, 0])
        await user.should_see(marker="audit-detail")
        code = by_testid(user, "audit-payload")
        assert isinstance(code, ui.code)
        assert "\u202e" not in code.content  # written as an escape: the same JSON
        assert json.loads(code.content)["content"] == "tea \u202eevil"


async def test_a_session_of_others_shows_direction_overrides_as_marks(web: WebApp) -> None:
    ada = web.services.personas.create("Ada")
    with acting_as("peer \u202eevil"):  # as a peer's events may name their session
        web.services.memories.add(ada.id, "Likes green tea")
    async with simulated(web) as user:
        await _open(user)
        await _shows(user, _logged(web))
        row = _table(user).rows[0]
        UserInteraction(user, {_table(user)}, None).trigger("rowClick", [{}, {"id": row["id"]}, 0])
        await user.should_see(marker="audit-detail")
        await user.should_see("peer ⟦RLO⟧evil")


# -- outcomes, conflicts and configuration ----------------------------------------------


@pytest.fixture
def synced(tmp_path: Path) -> Any:
    """The web app on a synced data directory (its events stay pending)."""
    data = DataDir(tmp_path / "synced")
    data.flags().set("sync", True)
    with WebApp(data) as app:
        yield app


async def test_a_rejected_event_shows_with_the_event_that_won(synced: WebApp) -> None:
    web = synced
    store = web.manager.store
    assert store is not None
    lost_persona, lost_memory, kept = web.manager.commit(
        persona("p1"), memory("m1", "p1"), persona("p2")
    )
    # Elsewhere p1 was made first, then deleted: neither of the first two applies now.
    upstream = history([persona("p1"), PersonaDeleted(persona_id="p1")], client_id="other")
    store.rebase(upstream)
    assert store.status(lost_memory.id) == "rejected"
    made, deleted = upstream
    async with simulated(web) as user:
        await _open(user)
        await until(lambda: _total(user) == 5, "all five events show")
        names = _names(user)
        assert names[0] == "v1.PersonaCreated"  # p2, pending, where the rejected ones sat
        assert sorted(names[1:3]) == ["v1.MemoryAdded", "v1.PersonaCreated"]
        assert names[3:] == ["v1.PersonaDeleted", "v1.PersonaCreated"]
        outcomes = {row["id"]: row["outcome"] for row in _table(user).rows}
        assert outcomes == {
            kept.id: "pending",
            lost_persona.id: "rejected",
            lost_memory.id: "rejected",
            deleted.id: "confirmed",
            made.id: "confirmed",
        }
        await user.should_see(marker="audit-winner")
        winners = {
            e.text
            for e in user.client.elements.values()
            if e.props.get("data-testid") == "audit-winner"
        }
        assert winners == {
            f"v1.PersonaCreated at {made.position}",
            f"v1.PersonaDeleted at {deleted.position}",
        }
        for outcome, expected in [
            ("rejected", 2),
            ("pending", 1),
            ("confirmed", 2),
        ]:
            set_value(user, "audit-outcome", [outcome])
            await until(_only(user, outcome, expected), f"only {outcome} events show")
        open_row = UserInteraction(user, {_table(user)}, None)
        set_value(user, "audit-outcome", ["rejected"])
        open_row.trigger("rowClick", [{}, {"id": lost_memory.id}, 0])
        await user.should_see(marker="audit-open-winner")
        reason = by_testid(user, "audit-reason")
        assert isinstance(reason, ui.label)
        assert deleted.id in reason.text
        UserInteraction(user, {by_testid(user, "audit-open-winner")}, None).click()

        def winner_shown() -> bool:
            payload = by_testid(user, "audit-payload")
            outcome = by_testid(user, "audit-detail-outcome")
            assert isinstance(payload, ui.code)
            assert isinstance(outcome, ui.badge)
            return '"persona_id": "p1"' in payload.content and outcome.text == "confirmed"

        await until(winner_shown, "the winner's payload shows")


async def test_configuration_changes_are_listed(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    set_flag(data, "use_livestore", False, source="test")  # journalled by SQL
    set_flag(data, "use_livestore", True, source="test")  # the store catches up
    with WebApp(data) as web:
        ada = web.services.personas.create("Ada")
        async with simulated(web) as user:
            await _open(user)
            await user.should_see("true → false")
            await user.should_see("false → true")
            web.services.personas.update(ada.id, sets=["privacy.analytics=true"])
            await user.should_see("privacy.analytics")
            set_value(user, "audit-type", ["v1.ConfigChanged"])
            await _shows(user, ["v1.ConfigChanged"] * 3)


async def test_with_the_store_off_the_view_says_why_it_is_empty(web: WebApp) -> None:
    web.manager.set_flag("use_livestore", False)
    async with simulated(web) as user:
        await user.open("/audit")
        await user.should_see(reads.STORE_OFF)
        web.manager.set_flag("use_livestore", True)
        await user.should_see(marker="audit-table", retries=50)


# -- the read model ---------------------------------------------------------------------


def test_filters_combine_and_count_what_the_page_pages(web: WebApp) -> None:
    ada = web.services.personas.create("Ada")
    web.services.memories.add(ada.id, "Likes green tea")
    web.services.memories.add(ada.id, "Likes black tea")
    where = AuditFilter(persona_id=ada.id, names=("v1.MemoryAdded",), text="green")
    assert [r.name for r in reads.page(web.manager, where).result] == ["v1.MemoryAdded"]
    assert reads.count(web.manager, where).result[0].n == 1
    assert reads.count(web.manager, AuditFilter(outcomes=("rejected",))).result[0].n == 0


@pytest.mark.parametrize(
    "text", ['say "hi"', "C:\\temp\\new", "two\nlines", "a\ttab", "50%_off", "\\%"]
)
def test_the_text_search_finds_quotes_backslashes_line_breaks_and_wildcards(
    web: WebApp, text: str
) -> None:
    ada = web.services.personas.create("Ada")
    web.services.memories.add(ada.id, f"before {text} after")
    web.services.memories.add(ada.id, "50 percent off, a plain line: two lines")
    where = AuditFilter(text=text)
    assert [r.name for r in reads.page(web.manager, where).result] == ["v1.MemoryAdded"]
    assert text in json.loads(reads.page(web.manager, where).result[0].args)["content"]
    assert reads.count(web.manager, where).result[0].n == 1


def test_the_reads_say_when_the_store_is_off(web: WebApp) -> None:
    web.manager.set_flag("use_livestore", False)
    with pytest.raises(Exception, match="the store is off"):
        reads.page(web.manager, AuditFilter())


def test_a_summary_puts_ids_last_leaves_out_the_persona_and_empty_fields_and_is_cut() -> None:
    args = (
        '{"memory_id": "m1", "persona_id": "p1", "content": "a  b\\nc", "name": "", "tags": ["x"]}'
    )
    assert summary(args, limit=200) == 'content: a b c, tags: ["x"], memory_id: m1'
    assert len(summary('{"content": "' + "x" * 300 + '"}')) == 90
