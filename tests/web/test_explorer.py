"""The memory explorer under a simulated user: filter, search, detail, edit, delete and
restore, live rows, paging, bookmarks and presets, the timeline, and the optimizer's
preview."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nicegui import ElementFilter, ui
from nicegui.testing.user import User
from nicegui.testing.user_interaction import UserInteraction

from pjai.app import Conversations, DataDir, Personas
from pjai.app.reads import memories as reads
from pjai.errors import QueryError
from pjai.schema import BookmarkCreated, ConversationStarted
from pjai.web import WebApp
from pjai.web.views.explorer_optimize import REASONS, _summary
from pjai.web.views.explorer_selection import Selection, format_time, parse_time
from pjai.web.views.explorer_table import MemoryTable
from pjai.web.views.explorer_timeline import bucket_range
from tests.cli.invoke import Cli
from tests.web.conftest import by_testid, set_value, simulated, until

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


# -- helpers ---------------------------------------------------------------------------


def _persona(web: WebApp, name: str = "Ada") -> str:
    return Personas(web.manager).create(name, activate=True).id


def _add(web: WebApp, persona_id: str, name: str, **fields: Any) -> str:
    fields.setdefault("occurred_at", T0)
    return web.services.memories.add(persona_id, f"{name}: content", name=name, **fields).memory.id


def _act(user: User, testid: str) -> UserInteraction[ui.element]:
    return UserInteraction(user, {by_testid(user, testid)}, None)


def _table(user: User) -> MemoryTable:
    table = by_testid(user, "explorer-table")
    assert isinstance(table, MemoryTable)
    return table


def _names(user: User) -> list[str]:
    return [row["name"] for row in _table(user).rows]


def _total(user: User) -> int:
    label = by_testid(user, "memory-total")
    assert isinstance(label, ui.label)
    return int(label.text)


async def _open_explorer(user: User, *expected: str) -> None:
    await user.open("/memories")
    for name in expected:
        await user.should_see(name)


def _open_row(user: User, memory_id: str) -> None:
    _act(user, "explorer-table").trigger("rowClick", [{}, {"id": memory_id}, 0])


def _teas_one_deleted(web: WebApp) -> None:
    """Ada, who likes green tea, and liked black tea (that memory deleted)."""
    ada = _persona(web)
    _add(web, ada, "Likes green tea")
    web.services.memories.delete(_add(web, ada, "Liked black tea"))


async def _open_with_deleted(user: User) -> None:
    """Open the explorer on the teas, showing the deleted memory too."""
    await _open_explorer(user, "Likes green tea")
    set_value(user, "filter-deleted", True)
    await until(lambda: _total(user) == 2, "the deleted memory counts")


# -- the table -------------------------------------------------------------------------


async def test_the_table_lists_the_active_personas_memories_with_their_total(
    web: WebApp,
) -> None:
    ada = _persona(web)
    other = Personas(web.manager).create("Basil").id
    _add(web, ada, "Walks at dawn", occurred_at=T0)
    _add(web, ada, "Likes green tea", occurred_at=T0 + timedelta(hours=1))
    _add(web, other, "Writes poems")
    async with simulated(web) as user:
        await _open_explorer(user, "Likes green tea", "Walks at dawn")
        await user.should_not_see("Writes poems")
        assert _names(user) == ["Likes green tea", "Walks at dawn"]
        await until(lambda: _total(user) == 2, "the total says 2")


async def test_a_memory_added_from_python_appears_without_a_reload(web: WebApp) -> None:
    ada = _persona(web)
    _add(web, ada, "Likes green tea")
    async with simulated(web) as user:
        await _open_explorer(user, "Likes green tea")
        _add(web, ada, "Plays the cello", importance=0.95)
        await user.should_see("Plays the cello")
        await until(lambda: _total(user) == 2, "the total says 2")


async def test_pages_come_from_the_server_one_at_a_time(web: WebApp) -> None:
    ada = _persona(web)
    for i in range(30):
        _add(web, ada, f"memory {i:02d}", importance=round(1 - i / 100, 2))
    async with simulated(web) as user:
        await _open_explorer(user, "memory 00")
        await until(lambda: _total(user) == 30, "the total says 30")
        assert len(_table(user).rows) == 25
        assert _names(user)[0] == "memory 00"  # newest first, then by id
        asked = {"page": 2, "rowsPerPage": 25, "sortBy": "importance", "descending": True}
        _act(user, "explorer-table").trigger("request", {"pagination": asked})
        await until(
            lambda: _names(user) == [f"memory {i:02d}" for i in range(25, 30)], "page 2 shows"
        )
        ascending = {**asked, "page": 1, "descending": False}
        _act(user, "explorer-table").trigger("request", {"pagination": ascending})
        await until(lambda: _names(user)[0] == "memory 29", "the least important comes first")


# -- filters and search -----------------------------------------------------------------


async def test_filters_narrow_the_table_and_the_total(web: WebApp) -> None:
    ada = _persona(web)
    _add(web, ada, "Hot fact", tier="hot", importance=0.9, type="fact", tags=["tea"])
    _add(web, ada, "Warm note", tier="warm", importance=0.5, type="note", tags=["tea"])
    _add(web, ada, "Cold note", tier="cold", importance=0.1, type="note")
    async with simulated(web) as user:
        await _open_explorer(user, "Hot fact", "Warm note", "Cold note")
        set_value(user, "filter-tiers", ["hot", "warm"])
        await user.should_not_see("Cold note")
        await until(lambda: _total(user) == 2, "two memories are hot or warm")
        _act(user, "filter-types").trigger("popupShow")  # reads the persona's types
        assert by_testid(user, "filter-types").options == ["fact", "note"]  # type: ignore[attr-defined]
        set_value(user, "filter-types", ["note"])
        await until(lambda: _names(user) == ["Warm note"], "only the warm note is left")
        _act(user, "filter-clear").click()
        await until(lambda: _total(user) == 3, "clearing shows all three")
        set_value(user, "filter-tags", ["tea"])
        await until(lambda: set(_names(user)) == {"Hot fact", "Warm note"}, "tagged tea")
        set_value(user, "filter-importance", {"min": 0.6, "max": 1.0})
        await until(lambda: _names(user) == ["Hot fact"], "importance 0.6 and up")


async def test_a_time_range_typed_in_narrows_the_table(web: WebApp) -> None:
    ada = _persona(web)
    _add(web, ada, "Monday memory", occurred_at=T0)
    _add(web, ada, "Friday memory", occurred_at=T0 + timedelta(days=4))
    async with simulated(web) as user:
        await _open_explorer(user, "Monday memory", "Friday memory")
        set_value(user, "filter-from", "2026-03-05")
        _act(user, "filter-from").trigger("keydown.enter")
        await until(lambda: _names(user) == ["Friday memory"], "only Friday's memory shows")


# Memories a second or less either side of 14:30 and 14:31 on 2 March 2026.
AROUND_A_MINUTE = {
    "a": "14:29:59.5",
    "b": "14:30:00",
    "c": "14:30:30",
    "d": "14:30:59.9",
    "e": "14:31:00",
    "f": "14:31:00.5",
}


def _showing(user: User, names: str) -> Callable[[], bool]:
    """Whether the table shows the memories named by the letters of ``names``."""
    return lambda: sorted(_names(user)) == list(names)


async def test_a_typed_range_shows_the_memories_the_cli_lists_for_it(tmp_path: Path) -> None:
    # `pjai memory list --since A --until B` and the explorer's From A, To B: an end to
    # the minute (hour, day) takes in that minute, one to the second that second, one
    # with a fraction the instant it names.
    cli = Cli(tmp_path / "data")
    cli("persona", "create", "Ada", "--id", "ada", "--activate")
    for name, at in AROUND_A_MINUTE.items():
        cli("memory", "add", "ada", f"at {at}", "--name", name, "--occurred-at", f"2026-03-02T{at}")
    day = "2026-03-02"
    ranges = [  # each finds other memories than the one before it
        ("", f"{day} 14:30", "abcd"),
        (f"{day} 14:30", f"{day} 14:30", "bcd"),
        (f"{day} 14:30", f"{day} 14:30:30", "bc"),
        (f"{day} 14:30:30", f"{day} 14:31", "cdef"),
        (f"{day} 14:30:30", f"{day} 14:30:59.9", "cd"),
        ("", f"{day}T15:30+01:00", "abcd"),
        (f"{day} 14:31", day, "ef"),
        ("", f"{day}T14", "abcdef"),
    ]
    with WebApp(DataDir(tmp_path / "data")) as web:
        async with simulated(web) as user:
            await _open_explorer(user, "a", "f")
            for start, end, expected in ranges:
                span = ("--since", start) if start else ()
                listed = cli.json("memory", "list", "ada", *span, "--until", end)
                assert sorted(m["name"] for m in listed) == list(expected), (start, end)
                set_value(user, "filter-from", start)
                set_value(user, "filter-to", end)
                _act(user, "filter-to").trigger("keydown.enter")
                await until(_showing(user, expected), f"From {start!r} To {end!r}: {expected}")


async def test_a_time_range_that_ends_before_it_starts_says_so(web: WebApp) -> None:
    ada = _persona(web)
    _add(web, ada, "Monday memory", occurred_at=T0)
    async with simulated(web) as user:
        await _open_explorer(user, "Monday memory")
        set_value(user, "filter-from", "2026-03-05")
        set_value(user, "filter-to", "2026-03-01")
        _act(user, "filter-to").trigger("keydown.enter")
        to = by_testid(user, "filter-to")
        await until(lambda: to.props.get("error-message", "").startswith("before From"))
        set_value(user, "filter-to", "2026-03-09")
        _act(user, "filter-to").trigger("keydown.enter")
        await until(lambda: not to.props.get("error-message"), "the error gone")


async def test_keyword_and_semantic_search_show_their_hits_and_a_failure_says_why(
    web: WebApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada = _persona(web)
    _add(web, ada, "Walks at dawn")
    _add(web, ada, "Likes green tea")
    async with simulated(web) as user:
        await _open_explorer(user, "Walks at dawn")
        set_value(user, "search-text", "tea")
        _act(user, "search-button").click()
        await until(lambda: _names(user) == ["Likes green tea"], "the keyword hit shows")
        await user.should_see("1 found by keyword search")
        assert _total(user) == 1
        set_value(user, "search-method", "semantic")
        set_value(user, "search-text", "a hot drink")  # no word in common: meaning only
        _act(user, "search-button").click()
        await user.should_see("2 found by semantic search", retries=200)  # loads the model
        await until(lambda: _names(user)[:1] == ["Likes green tea"], "the nearest comes first")
        monkeypatch.setenv("PJAI_EMBEDDING_MODEL", "gpt-9")
        set_value(user, "search-text", "a cold drink")
        _act(user, "search-button").click()
        await user.should_see("semantic search failed: PJAI_EMBEDDING_MODEL='gpt-9'")
        set_value(user, "search-method", "keyword")
        set_value(user, "search-text", "tea")
        _act(user, "search-button").click()
        await until(lambda: _names(user) == ["Likes green tea"], "keyword search works again")


async def test_a_search_with_deleted_memories_too_shows_the_deleted_hits(web: WebApp) -> None:
    _teas_one_deleted(web)
    async with simulated(web) as user:
        await _open_with_deleted(user)
        set_value(user, "search-text", "tea")
        _act(user, "search-button").click()
        await user.should_see("2 found by keyword search")
        await until(
            lambda: sorted(_names(user)) == ["Liked black tea", "Likes green tea"],
            "both hits show, the deleted one too",
        )


async def test_a_search_by_meaning_says_deleted_memories_are_not_searched_so(
    web: WebApp,
) -> None:
    _teas_one_deleted(web)
    async with simulated(web) as user:
        await _open_with_deleted(user)
        set_value(user, "search-method", "semantic")
        set_value(user, "search-text", "a hot drink")
        _act(user, "search-button").click()
        await user.should_see(
            "1 found by semantic search for “a hot drink”; deleted memories are not "
            "searched by meaning",
            retries=200,  # loads the model
        )
        assert _names(user) == ["Likes green tea"]


# -- a memory ---------------------------------------------------------------------------


async def test_opening_a_memory_shows_it_and_records_an_access(web: WebApp) -> None:
    ada = _persona(web)
    tea = _add(web, ada, "Likes green tea")
    walks = _add(web, ada, "Walks at dawn")
    web.services.memories.link(tea, walks, "related", strength=0.7)
    async with simulated(web) as user:
        await _open_explorer(user, "Likes green tea")
        _open_row(user, tea)
        await user.should_see("Likes green tea: content")
        await user.should_see("related · strength 0.70")
        await user.should_see(kind=ui.echart)  # the graph around it
        assert web.services.memories.get(tea).access_count == 1
        await user.should_see("once, last")
        store = web.manager.store
        assert store is not None
        listening = store.live_queries
        with user:
            for dialog in ElementFilter(kind=ui.dialog, marker=None):
                dialog.close()
        assert store.live_queries < listening  # a closed detail stops listening


async def test_editing_a_memory_saves_it_through_the_service(web: WebApp) -> None:
    ada = _persona(web)
    tea = _add(web, ada, "Likes green tea", importance=0.5)
    async with simulated(web) as user:
        await _open_explorer(user, "Likes green tea")
        _open_row(user, tea)
        await user.should_see("Likes green tea: content")
        _act(user, "detail-edit").click()
        set_value(user, "edit-name", "Loves green tea")
        set_value(user, "edit-importance", 0.9)
        set_value(user, "edit-tier", "cold")
        _act(user, "edit-save").click()
        await user.should_see("Saved “Loves green tea”")
        saved = web.services.memories.get(tea)
        assert (saved.name, saved.importance, saved.tier, saved.pinned) == (
            "Loves green tea",
            0.9,
            "cold",
            True,
        )
        await until(lambda: _names(user) == ["Loves green tea"], "the table shows the new name")


async def test_a_refused_edit_names_the_field_as_the_dialog_shows_it(web: WebApp) -> None:
    ada = _persona(web)
    tea = _add(web, ada, "Likes green tea")
    async with simulated(web) as user:
        await _open_explorer(user, "Likes green tea")
        _open_row(user, tea)
        await user.should_see("Likes green tea: content")
        _act(user, "detail-edit").click()
        set_value(user, "edit-type", "t" * 33)
        _act(user, "edit-save").click()
        await user.should_see("Type: expected text of at most 32 characters")
        set_value(user, "edit-type", "note")
        set_value(user, "edit-content", "")
        _act(user, "edit-save").click()
        await user.should_see("Content: expected text of at least 1 character")
        set_value(user, "edit-content", "tea")
        (tags,) = [
            e for e in user.find(kind=ui.input_chips).elements if "data-testid" not in e.props
        ]
        with user:
            tags.value = ["green", "x" * 65]
        _act(user, "edit-save").click()
        await user.should_see("Tags, item 2: expected text of at most 64 characters")
    assert web.services.memories.get(tea).content == "Likes green tea: content"


async def test_deleting_and_restoring_a_memory(web: WebApp) -> None:
    ada = _persona(web)
    tea = _add(web, ada, "Likes green tea")
    _add(web, ada, "Walks at dawn")
    async with simulated(web) as user:
        await _open_explorer(user, "Likes green tea")
        _open_row(user, tea)
        await user.should_see("Likes green tea: content")
        _act(user, "detail-delete").click()
        await until(lambda: _names(user) == ["Walks at dawn"], "the deleted memory leaves")
        assert web.services.memories.get(tea).deleted_at is not None
        await until(lambda: _total(user) == 1, "the total says 1")
        _act(user, "detail-restore").click()
        await until(lambda: "Likes green tea" in _names(user), "the memory is back")
        assert web.services.memories.get(tea).deleted_at is None


async def test_deleted_memories_show_with_the_switch_and_open_without_an_access(
    web: WebApp,
) -> None:
    ada = _persona(web)
    tea = _add(web, ada, "Likes green tea")
    web.services.memories.delete(tea)
    async with simulated(web) as user:
        await _open_explorer(user)
        await until(lambda: _total(user) == 0, "no live memory")
        set_value(user, "filter-deleted", True)
        await until(lambda: _names(user) == ["Likes green tea"], "the deleted memory shows")
        _open_row(user, tea)
        await user.should_see(kind=ui.button, content="Restore")
        assert web.services.memories.get(tea).access_count == 0


async def test_a_restore_a_privacy_rule_would_undo_says_why(web: WebApp) -> None:
    ada = (
        Personas(web.manager)
        .create("Ada", activate=True, sets=["privacy.memory_retention=false"])
        .id
    )
    tea = _add(web, ada, "Likes green tea")
    Conversations(web.manager).start(ada)  # a new session: the memory is deleted
    async with simulated(web) as user:
        await _open_explorer(user)
        set_value(user, "filter-deleted", True)
        await until(lambda: _names(user) == ["Likes green tea"], "the deleted memory shows")
        _open_row(user, tea)
        user.find(kind=ui.button, content="Restore").click()
        await user.should_see("privacy.memory_retention is off")
    assert web.services.memories.get(tea).deleted_at is not None


# -- bookmarks, presets, timeline ----------------------------------------------------------


async def test_a_bookmark_saves_the_filter_and_opening_it_applies_it(web: WebApp) -> None:
    ada = _persona(web)
    _add(web, ada, "Hot fact", tier="hot")
    _add(web, ada, "Cold note", tier="cold")
    async with simulated(web) as user:
        await _open_explorer(user, "Hot fact", "Cold note")
        set_value(user, "filter-tiers", ["hot"])
        await user.should_not_see("Cold note")
        _act(user, "bookmark-save").click()
        set_value(user, "bookmark-name", "Only hot")
        _act(user, "bookmark-confirm").click()
        await user.should_see("Bookmarked “Only hot”")
        _act(user, "bookmark-confirm").click()  # a second click, queued already
        (saved,) = web.services.bookmarks.list(ada)
        assert (saved.name, saved.filters["tiers"]) == ("Only hot", ["hot"])
        _act(user, "filter-clear").click()
        await user.should_see("Cold note")
        await user.should_see("Only hot")  # its chip
        _act(user, "bookmark").click()
        await user.should_not_see("Cold note")
        await until(lambda: _names(user) == ["Hot fact"], "the bookmark's filter applies")
        assert by_testid(user, "filter-tiers").value == ["hot"]  # type: ignore[attr-defined]


async def test_a_bookmarks_name_and_description_show_direction_overrides_as_marks(
    web: WebApp,
) -> None:
    ada = _persona(web)
    _add(web, ada, "Hot fact", tier="hot")
    web.services.bookmarks.create(ada, "Book \u202ekram", description="tip \u202eevil")
    async with simulated(web) as user:
        await _open_explorer(user, "Hot fact")
        await user.should_see("Book ⟦RLO⟧kram")
        chip = by_testid(user, "bookmark")
        tips = [e.text for e in chip.descendants() if isinstance(e, ui.tooltip)]
        assert tips == ["tip ⟦RLO⟧evil"]
        _act(user, "bookmark-save").click()
        set_value(user, "bookmark-name", "Only \u202ehot")
        _act(user, "bookmark-confirm").click()
        await user.should_see("Bookmarked “Only ⟦RLO⟧hot”")


async def test_a_refused_bookmark_names_the_field_as_the_page_shows_it(web: WebApp) -> None:
    ada = _persona(web)
    _add(web, ada, "Hot fact", tier="hot")
    async with simulated(web) as user:
        await _open_explorer(user, "Hot fact")
        _act(user, "bookmark-save").click()
        set_value(user, "bookmark-name", "B" * 201)
        _act(user, "bookmark-confirm").click()
        await user.should_see("Name: expected text of at most 200 characters")
        set_value(user, "bookmark-name", "Long tag")
        set_value(user, "filter-tags", ["x" * 65])  # the filter bar's Tags
        await until(lambda: _names(user) == [], "the filter applies")
        _act(user, "bookmark-confirm").click()
        await user.should_see("Tags, item 1: expected text of at most 64 characters")
        assert not any("filters." in m for m in user.notify.messages)
    assert web.services.bookmarks.list(ada) == []


async def test_a_preset_applies_its_filter_without_saving_it(web: WebApp) -> None:
    ada = _persona(web)
    _add(web, ada, "Hot fact", tier="hot")
    _add(web, ada, "Cold note", tier="cold")
    async with simulated(web) as user:
        await _open_explorer(user, "Hot fact", "Cold note")
        _act(user, "preset-hot_memories").click()
        await until(lambda: _names(user) == ["Hot fact"], "only hot memories show")
        assert web.services.bookmarks.list(ada) == []


async def test_clicking_a_timeline_bar_shows_that_time(web: WebApp) -> None:
    ada = _persona(web)
    _add(web, ada, "Monday memory", occurred_at=T0)
    _add(web, ada, "Friday memory", occurred_at=T0 + timedelta(days=4))
    async with simulated(web) as user:
        await _open_explorer(user, "Monday memory", "Friday memory")
        chart = by_testid(user, "timeline-chart")
        assert isinstance(chart, ui.echart)
        await until(
            lambda: chart.options["xAxis"]["data"] == ["2026-03-02", "2026-03-06"],
            "the timeline has a bar per day",
        )
        click = {
            "componentType": "series",
            "seriesType": "bar",
            "seriesIndex": 0,
            "seriesName": "memories",
            "name": "2026-03-06",
            "dataIndex": 1,
            "data": {"value": 1},
            "dataType": None,
            "value": 1,
        }
        UserInteraction(user, {chart}, None).trigger("componentClick", click)
        await until(lambda: _names(user) == ["Friday memory"], "only Friday's memory shows")
        assert by_testid(user, "filter-from").value == "2026-03-06"  # type: ignore[attr-defined]
        _act(user, "timeline-all").click()
        await until(lambda: _total(user) == 2, "all time shows both")


# -- optimize ------------------------------------------------------------------------------


async def test_optimize_previews_the_moves_then_applies_them(web: WebApp) -> None:
    ada = _persona(web)
    buried = _add(web, ada, "Buried treasure", tier="cold", pinned=False, importance=1.0)
    for i in range(3):
        _add(web, ada, f"filler {i}", tier="hot", pinned=False, importance=0.05)
    web.services.memories.add(
        ada, "unnamed, and low: content", tier="hot", pinned=False, importance=0.05
    )
    async with simulated(web) as user:
        await _open_explorer(user, "Buried treasure")
        _act(user, "optimize").click()
        await user.should_see(kind=ui.label, marker=None, content="would change")
        moves = by_testid(user, "optimize-moves")
        assert isinstance(moves, ui.table)
        preview = {row["name"]: row["change"] for row in moves.rows}
        assert preview["Buried treasure"].startswith("cold → ")
        assert "unnamed, and low: content" in preview  # named by its text, as the table does
        assert web.services.memories.get(buried).tier == "cold"  # a preview changes nothing
        _act(user, "optimize-apply").click()
        await user.should_see("Optimized:")
        moved = web.services.memories.get(buried).tier
        assert moved != "cold"
        assert preview["Buried treasure"] == f"cold → {moved}"


# -- the pieces without a page ----------------------------------------------------------------


def test_a_preview_commits_nothing(web: WebApp) -> None:
    ada = _persona(web)
    _add(web, ada, "Buried treasure", tier="cold", pinned=False, importance=1.0)
    cold = "SELECT count(*) AS n FROM memories WHERE tier = 'cold'"
    before = web.manager.query(cold)[0].n
    report = reads.optimize_preview(web.manager, ada)
    assert [m.to for m in report.moves] == ["hot"]
    assert web.manager.query(cold)[0].n == before


def test_a_preview_shows_the_deletions_of_the_privacy_rules_as_a_run_makes_them(
    web: WebApp,
) -> None:
    ada = Personas(web.manager).create("Ada", sets=["privacy.memory_retention=false"]).id
    before = _add(web, ada, "Before the session")
    # A conversation started elsewhere (synced): no run here has applied the rule yet.
    web.manager.commit(ConversationStarted(conversation_id="c1", persona_id=ada))
    report = reads.optimize_preview(web.manager, ada)
    assert [(m.memory_id, m.action, m.reason) for m in report.moves] == [
        (before, "deleted", "session")
    ]
    assert "1 deleted" in _summary(report)
    assert REASONS["session"]
    (done,) = web.services.memories.optimize(ada)
    assert done.moves == report.moves


@pytest.mark.parametrize(
    ("key", "unit", "first", "last"),
    [
        ("2026-01-31T23:00", "hour", "2026-01-31T23:00:00", "2026-01-31T23:59:59.999999"),
        ("2026-02-28", "day", "2026-02-28T00:00:00", "2026-02-28T23:59:59.999999"),
        ("2025-W01", "week", "2024-12-30T00:00:00", "2025-01-05T23:59:59.999999"),
        ("2026-12", "month", "2026-12-01T00:00:00", "2026-12-31T23:59:59.999999"),
    ],
)
def test_a_timeline_bucket_spans_its_whole_unit(key: str, unit: Any, first: str, last: str) -> None:
    start, end = bucket_range(key, unit)
    assert (start, end) == (
        datetime.fromisoformat(first).replace(tzinfo=UTC),
        datetime.fromisoformat(last).replace(tzinfo=UTC),
    )


@pytest.mark.parametrize("text", ["2026-03-02", "2026-03-02 14:30"])
@pytest.mark.parametrize("end", [False, True])
def test_a_typed_time_reads_back_as_written(text: str, end: bool) -> None:
    assert format_time(parse_time(text, end=end), end=end) == text


@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.booleans(),
)
def test_a_time_shown_in_a_field_reads_back_to_the_same_instant(
    moment: datetime, end: bool
) -> None:
    # A bookmark's range (made in Python or with the CLI, to the microsecond) is shown in
    # the fields and read back from them whenever another filter changes.
    moment = moment.replace(tzinfo=UTC)
    assert parse_time(format_time(moment, end=end), end=end) == moment


@pytest.mark.parametrize(
    ("text", "last"),
    [
        ("20260302", "2026-03-02T23:59:59.999999"),
        ("2026-W10-1", "2026-03-02T23:59:59.999999"),
        ("2026-03-02T14", "2026-03-02T14:59:59.999999"),
        ("2026-03-02 14:30:15", "2026-03-02T14:30:15.999999"),
        ("2026-03-02 14:30:00.25", "2026-03-02T14:30:00.250000"),
        ("2026-03-02T14:30-05:00", "2026-03-02T19:30:59.999999"),
    ],
)
def test_an_end_takes_in_the_whole_unit_typed(text: str, last: str) -> None:
    assert parse_time(text, end=True) == datetime.fromisoformat(last).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "end"),
    [
        ("9999-12-31", True),
        ("9999-12-31 23:59", True),
        ("0001-01-01T00:00+05:00", False),
        # Refused by the command line too: outside the times an event (a bookmark) keeps.
        ("0001-01-01", False),
        ("0001-01-02T00:30+01:00", False),
        ("9999-12-31", False),
        ("9999-12-30 23:59-01:00", True),
    ],
)
def test_a_time_at_the_calendars_edge_is_refused_as_the_cli_refuses_it(
    text: str, end: bool
) -> None:
    with pytest.raises(QueryError, match="a time must lie between 0001-01-02 and 9999-12-30"):
        parse_time(text, end=end)


def test_the_calendars_first_and_last_days_are_read_in_full() -> None:
    assert parse_time("0001-01-02") == datetime(1, 1, 2, tzinfo=UTC)
    assert parse_time("9999-12-30", end=True) == datetime.max.replace(day=30, tzinfo=UTC)


def test_a_bookmark_keeps_the_selection(web: WebApp) -> None:
    ada = _persona(web)
    chosen = Selection(
        tiers=("hot",),
        types=("fact",),
        tags=("tea",),
        importance=(0.25, 0.75),
        occurred_from=T0,
        occurred_to=T0 + timedelta(days=1),
        hours=(9, 17),
    )
    row = web.services.bookmarks.create(ada, "Mark", **chosen.bookmark())
    assert Selection.of_bookmark(row) == chosen


async def test_the_explorer_follows_the_active_persona(web: WebApp) -> None:
    ada = _persona(web)
    basil = Personas(web.manager).create("Basil").id
    _add(web, ada, "Likes green tea")
    _add(web, basil, "Writes poems")
    async with simulated(web) as user:
        await _open_explorer(user, "Likes green tea")
        Personas(web.manager).activate(basil)
        await user.should_see("Writes poems")
        await user.should_not_see("Likes green tea")


async def test_emptying_the_last_page_goes_back_a_page(web: WebApp) -> None:
    ada = _persona(web)
    ids = [_add(web, ada, f"memory {i:02d}") for i in range(26)]
    async with simulated(web) as user:
        await _open_explorer(user, "memory 00")
        asked = {"page": 2, "rowsPerPage": 25, "sortBy": "occurred_at", "descending": True}
        _act(user, "explorer-table").trigger("request", {"pagination": asked})
        await until(lambda: _names(user) == ["memory 25"], "page 2 shows the last memory")
        web.services.memories.delete(ids[25])
        await until(lambda: len(_names(user)) == 25, "page 1 shows again")
        assert _table(user).pagination["page"] == 1


async def test_a_memory_without_a_name_is_listed_by_its_text(web: WebApp) -> None:
    ada = _persona(web)
    web.services.memories.add(ada, "Prefers   short answers\nand plain words " + "x" * 100)
    async with simulated(web) as user:
        await _open_explorer(user, "Prefers short answers and plain words")
        (shown,) = _names(user)
        assert shown.startswith("Prefers short answers and plain words xxx")
        assert shown.endswith("…")
        assert len(shown) == 80


# An id is opaque text: written into props text, it would add props, and a ``:`` prop
# is JavaScript the browser runs (a persona or bookmark id can come from a peer).
HOSTILE_ID = 'p1" :data-x="window.__pwned=1'


def _attributes(user: User, name: str) -> list[dict[str, Any]]:
    """The props of every element that has the prop ``name``."""
    return [dict(e.props) for e in user.find(ui.element).elements if name in e.props]


async def test_ids_are_attribute_values_never_props_text(web: WebApp) -> None:
    ada = Personas(web.manager).create("Ada", persona_id=HOSTILE_ID, activate=True).id
    web.services.bookmarks.create(ada, "Beach")
    bookmark = web.manager.query("SELECT id FROM bookmarks")[0].id
    web.manager.commit(BookmarkCreated(bookmark_id=HOSTILE_ID, persona_id=ada, name="Kite"))
    async with simulated(web) as user:
        await _open_explorer(user)
        await user.should_see("Kite")
        marked = [*_attributes(user, "data-persona"), *_attributes(user, "data-bookmark")]
        assert {p.get("data-persona") or p.get("data-bookmark") for p in marked} == {
            HOSTILE_ID,
            bookmark,
        }
        assert all(":data-x" not in p for p in marked)
        await user.open("/personas")
        await user.should_see("Ada")
        (row,) = _attributes(user, "data-persona-id")
        assert row["data-persona-id"] == HOSTILE_ID
        assert ":data-x" not in row


async def test_without_an_active_persona_the_explorer_says_which_is_missing(web: WebApp) -> None:
    async with simulated(web) as user:
        await user.open("/memories")
        await user.should_see("No persona yet: create one in")
        _persona(web)
        basil = _persona(web, "Basil")  # active now; then deleted, Ada left inactive
        await user.should_see(marker="explorer-table")
        web.services.personas.delete(basil)
        await user.should_see("No persona is active: choose one in the header")


async def test_a_direction_override_in_a_memory_is_shown_not_obeyed(web: WebApp) -> None:
    ada = _persona(web)
    added = web.services.memories.add(
        ada, "Pay \u202eevil", name="Note \u202eevil", tags=["x\u202dy"], summary="Sum \u202eevil"
    )
    async with simulated(web) as user:
        await _open_explorer(user, "Note ⟦RLO⟧evil")
        assert _table(user).rows[0]["tags"] == "x⟦LRO⟧y"
        _open_row(user, added.memory.id)
        await user.should_see("Sum ⟦RLO⟧evil")  # the detail's summary
        await user.should_see("x⟦LRO⟧y", kind=ui.chip)  # and its tags


async def test_a_memory_without_a_name_shows_its_text_in_the_table_and_the_detail(
    web: WebApp,
) -> None:
    ada = _persona(web)
    memory_id = web.services.memories.add(ada, "Morning runs by the river").memory.id
    async with simulated(web) as user:
        await _open_explorer(user, "Morning runs by the river")
        _open_row(user, memory_id)

        def titled() -> bool:
            title = by_testid(user, "detail-name")
            return isinstance(title, ui.label) and title.text == "Morning runs by the river"

        await until(titled, "the detail's title")
