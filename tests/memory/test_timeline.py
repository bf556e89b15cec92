"""The timeline: buckets by hour, day, ISO week and month; presets; bookmarked memories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pjai.errors import QueryError
from pjai.memory.timeline import bookmark_memories, preset, timeline
from pjai.schema import BookmarkCreated, BookmarkFilters, MemoryDeleted, MemoryFilter
from pjai.store import Store
from tests.helpers import memory, persona

NOW = datetime(2026, 11, 26, 12, 30, tzinfo=UTC)  # a Thursday


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def counts(store: Store, unit: str, **bounds: Any) -> dict[str, int]:
    return {b.key: b.memories for b in timeline(store, "p1", unit, **bounds)}  # type: ignore[arg-type]


def test_day_buckets_hold_count_and_importance_statistics(store: Store) -> None:
    store.commit(
        persona(),
        memory("a", occurred_at=at(2026, 3, 1, 8), importance=0.2),
        memory("b", occurred_at=at(2026, 3, 1, 20), importance=0.6),
        memory("c", occurred_at=at(2026, 3, 2, 9), importance=0.9),
    )
    first, second = timeline(store, "p1", "day")
    assert (first.key, first.memories) == ("2026-03-01", 2)
    assert (first.importance_avg, first.importance_min, first.importance_max) == (0.4, 0.2, 0.6)
    assert (first.first, first.last) == (at(2026, 3, 1, 8), at(2026, 3, 1, 20))
    assert (second.key, second.memories, second.importance_avg) == ("2026-03-02", 1, 0.9)


def test_hour_and_month_buckets(store: Store) -> None:
    store.commit(
        persona(),
        memory("a", occurred_at=at(2026, 1, 31, 23, 5)),
        memory("b", occurred_at=at(2026, 1, 31, 23, 55)),
        memory("c", occurred_at=at(2026, 2, 1, 0, 1)),
    )
    assert counts(store, "hour") == {"2026-01-31T23:00": 2, "2026-02-01T00:00": 1}
    assert counts(store, "month") == {"2026-01": 2, "2026-02": 1}


def test_weeks_are_iso_weeks_across_a_year_boundary(store: Store) -> None:
    store.commit(
        persona(),
        memory("sun-before", occurred_at=at(2024, 12, 29, 12)),
        memory("monday", occurred_at=at(2024, 12, 30, 0)),
        memory("new-year", occurred_at=at(2025, 1, 1, 12)),
        memory("sunday", occurred_at=at(2025, 1, 5, 23, 59)),
        memory("next-monday", occurred_at=at(2025, 1, 6, 0)),
        memory("friday", occurred_at=at(2027, 1, 1, 12)),
    )
    # 30 Dec 2024 to 5 Jan 2025 is one week, ISO 2025-W01; 1 Jan 2027 is in 2026-W53.
    assert counts(store, "week") == {
        "2024-W52": 1,
        "2025-W01": 3,
        "2025-W02": 1,
        "2026-W53": 1,
    }


def test_keys_of_early_years_have_four_digits_as_iso_writes_them(store: Store) -> None:
    store.commit(
        persona(),
        memory("first", occurred_at=at(1, 1, 2, 12)),
        memory("medieval", occurred_at=at(999, 5, 5, 12)),
    )
    assert counts(store, "week") == {"0001-W01": 1, "0999-W18": 1}
    assert counts(store, "month") == {"0001-01": 1, "0999-05": 1}


def test_range_is_half_open_and_deleted_memories_are_left_out(store: Store) -> None:
    store.commit(
        persona(),
        persona("p2"),
        memory("a", occurred_at=at(2026, 5, 1)),
        memory("b", occurred_at=at(2026, 5, 2)),
        memory("c", occurred_at=at(2026, 5, 3)),
        memory("gone", occurred_at=at(2026, 5, 2, 6)),
        memory("other", "p2", occurred_at=at(2026, 5, 2)),
    )
    store.commit(MemoryDeleted(memory_id="gone", persona_id="p1"))
    assert counts(store, "day", start=at(2026, 5, 2), end=at(2026, 5, 3)) == {"2026-05-02": 1}
    assert sum(counts(store, "day").values()) == 3


def test_unknown_unit(store: Store) -> None:
    with pytest.raises(QueryError, match="'year'"):
        timeline(store, "p1", "year")  # type: ignore[arg-type]


def test_today_and_this_week_presets_cover_their_range() -> None:
    # A bookmark's time_to is included: the presets end on the last microsecond.
    today = preset("today", "p1", now=NOW)
    assert (today.time_from, today.time_to) == (
        at(2026, 11, 26),
        at(2026, 11, 26, 23, 59, 59, 999_999),
    )
    week = preset("this_week", "p1", now=NOW)
    assert (week.time_from, week.time_to) == (
        at(2026, 11, 23),
        at(2026, 11, 29, 23, 59, 59, 999_999),
    )
    assert week.time_from is not None
    assert week.time_from.weekday() == 0
    assert today.bookmark_id != week.bookmark_id


def test_unknown_preset() -> None:
    with pytest.raises(QueryError, match=r"'tomorrow'.*today, this_week"):
        preset("tomorrow", "p1")


def ids(rows: list[object]) -> list[str]:
    return [r.id for r in rows]  # type: ignore[attr-defined]


def test_preset_bookmarks_show_their_memories(store: Store) -> None:
    store.commit(
        persona(),
        memory("yesterday", occurred_at=at(2026, 11, 25, 10), tier="hot"),
        memory("morning", occurred_at=at(2026, 11, 26, 8, 59)),
        memory("nine", occurred_at=at(2026, 11, 26, 9)),
        memory("afternoon", occurred_at=at(2026, 11, 26, 16, 59), tier="hot"),
        memory("five", occurred_at=at(2026, 11, 26, 17)),
        memory("monday", occurred_at=at(2026, 11, 23, 0)),
        memory("next-week", occurred_at=at(2026, 11, 30, 0)),
    )
    marks = {name: preset(name, "p1", now=NOW) for name in ("today", "this_week")}
    marks["working_hours"] = preset("working_hours", "p1", now=NOW)
    marks["hot_memories"] = preset("hot_memories", "p1", now=NOW)
    store.commit(*marks.values())
    shown = {name: ids(bookmark_memories(store, m.bookmark_id)) for name, m in marks.items()}
    assert shown["today"] == ["five", "afternoon", "nine", "morning"]
    assert shown["this_week"] == [
        "five",
        "afternoon",
        "nine",
        "morning",
        "yesterday",
        "monday",
    ]
    assert shown["working_hours"] == ["afternoon", "nine", "yesterday"]
    assert shown["hot_memories"] == ["afternoon", "yesterday"]


def test_bookmark_filters_types_tags_and_importance(store: Store) -> None:
    store.commit(
        persona(),
        memory("fit", type="fact", tags=["work", "urgent"], importance=0.7),
        memory("wrong-type", type="note", tags=["work"], importance=0.7),
        memory("wrong-tag", type="fact", tags=["home"], importance=0.7),
        memory("too-low", type="fact", tags=["work"], importance=0.2),
        memory("too-high", type="fact", tags=["work"], importance=0.95),
        BookmarkCreated(
            bookmark_id="b1",
            persona_id="p1",
            name="Work facts",
            filters=BookmarkFilters(
                types=["fact"], tags=["work"], importance_min=0.5, importance_max=0.9
            ),
        ),
    )
    assert ids(bookmark_memories(store, "b1")) == ["fit"]


def test_a_bookmark_time_range_includes_both_ends(store: Store) -> None:
    store.commit(
        persona(),
        memory("before", occurred_at=at(2026, 5, 1, 23, 59, 59, 999_999)),
        memory("first", occurred_at=at(2026, 5, 2)),
        memory("last", occurred_at=at(2026, 5, 3)),
        memory("after", occurred_at=at(2026, 5, 3, 0, 0, 0, 1)),
        BookmarkCreated(
            bookmark_id="b1",
            persona_id="p1",
            name="Two days",
            time_from=at(2026, 5, 2),
            time_to=at(2026, 5, 3),
        ),
    )
    assert ids(bookmark_memories(store, "b1")) == ["last", "first"]


def test_a_timeline_filter_narrows_its_window(store: Store) -> None:
    store.commit(
        persona(),
        memory("a", occurred_at=at(2026, 5, 1), tier="hot"),
        memory("b", occurred_at=at(2026, 5, 2), tier="hot"),
        memory("c", occurred_at=at(2026, 5, 2, 12)),
        memory("d", occurred_at=at(2026, 5, 3), tier="hot"),
    )
    where = MemoryFilter(tiers=["hot"], occurred_to=at(2026, 5, 3))
    assert counts(store, "day", where=where) == {"2026-05-01": 1, "2026-05-02": 1, "2026-05-03": 1}
    narrowed = counts(store, "day", start=at(2026, 5, 2), end=at(2026, 5, 3), where=where)
    assert narrowed == {"2026-05-02": 1}


def test_bookmark_limit_keeps_the_most_recent(store: Store) -> None:
    start = at(2026, 1, 1)
    store.commit(
        persona(),
        *[memory(f"m{i}", occurred_at=start + timedelta(days=i)) for i in range(5)],
        BookmarkCreated(bookmark_id="b1", persona_id="p1", name="All"),
    )
    assert ids(bookmark_memories(store, "b1", limit=2)) == ["m4", "m3"]


def test_unknown_bookmark(store: Store) -> None:
    with pytest.raises(QueryError, match="'ghost'"):
        bookmark_memories(store, "ghost")
