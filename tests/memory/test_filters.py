"""What each memory filter field means, the same for every read that takes one.

The SQL repositories, keyword search, bookmarks and the timeline all select memories
with a :class:`MemoryFilter`; each case below runs through each of them that can say it
(a bookmark has no created range and never shows deleted memories), on the store and on
the SQL primary with the store off.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from pjai.errors import QueryError
from pjai.hybrid import HybridDatabaseManager
from pjai.memory.search import search
from pjai.memory.timeline import bookmark_memories, timeline
from pjai.schema import (
    BookmarkCreated,
    BookmarkFilters,
    MemoryDeleted,
    MemoryFilter,
    MemoryImported,
    PersonaCreated,
    new_id,
)
from tests.memory.conftest import READERS, open_reader


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# Each memory happened on a day of its own, so that timeline days name memories.
MEMORIES: dict[str, dict[str, Any]] = {
    "m1": {"tier": "hot", "tags": ["roses"], "importance": 0.2, "at": at(2026, 5, 1, 8)},
    "m2": {
        "tier": "warm",
        "type": "fact",
        "tags": ["roses", "june"],
        "importance": 0.5,
        "at": at(2026, 5, 2, 9),
    },
    "m3": {
        "tier": "cold",
        "type": "fact",
        "tags": ["june"],
        "importance": 0.8,
        "at": at(2026, 5, 3, 16, 59, 59, 999_999),
    },
    "m4": {"tier": "warm", "importance": 1.0, "at": at(2026, 5, 4, 17)},
    "gone": {"at": at(2026, 5, 5, 12)},  # deleted
    "other": {"persona": "p2", "at": at(2026, 5, 6, 10)},
}
DAYS = {fields["at"].date().isoformat(): memory_id for memory_id, fields in MEMORIES.items()}

LIVE = ["m1", "m2", "m3", "m4"]
CASES: dict[str, tuple[dict[str, Any], list[str]]] = {
    "nothing but the persona": ({}, LIVE),
    "persona_id": ({"persona_id": "p2"}, ["other"]),
    "tiers: any of them": ({"tiers": ["hot", "cold"]}, ["m1", "m3"]),
    "types: any of them": ({"types": ["fact"]}, ["m2", "m3"]),
    "tags: one": ({"tags": ["roses"]}, ["m1", "m2"]),
    "tags: every one": ({"tags": ["roses", "june"]}, ["m2"]),
    "importance_min: included": ({"importance_min": 0.5}, ["m2", "m3", "m4"]),
    "importance_max: included": ({"importance_max": 0.5}, ["m1", "m2"]),
    "occurred_from: included": ({"occurred_from": at(2026, 5, 2, 9)}, ["m2", "m3", "m4"]),
    "occurred_to: included": (
        {"occurred_to": at(2026, 5, 3, 16, 59, 59, 999_999)},
        ["m1", "m2", "m3"],
    ),
    "occurred range": (
        {"occurred_from": at(2026, 5, 2, 9), "occurred_to": at(2026, 5, 4, 17)},
        ["m2", "m3", "m4"],
    ),
    "created_from: included": ({"created_from": at(2026, 5, 3, 16, 59, 59, 999_999)}, ["m3", "m4"]),
    "created_to: included": ({"created_to": at(2026, 5, 2, 9)}, ["m1", "m2"]),
    "hours: from, up to": ({"hours": (9, 17)}, ["m2", "m3"]),
    "include_deleted": ({"include_deleted": True}, ["gone", *LIVE]),
}


def _repository(manager: HybridDatabaseManager, where: MemoryFilter) -> list[str]:
    return [m.id for m in manager.memories.list(where, limit=None)]


def _search(manager: HybridDatabaseManager, where: MemoryFilter) -> list[str]:
    return [h.memory_id for h in search(manager, "garden", where, limit=50)]


def _timeline(manager: HybridDatabaseManager, where: MemoryFilter) -> list[str]:
    assert where.persona_id is not None
    return [DAYS[b.key] for b in timeline(manager, where.persona_id, "day", where=where)]


def _bookmark(manager: HybridDatabaseManager, where: MemoryFilter) -> list[str]:
    assert where.persona_id is not None
    filters = {
        name: getattr(where, name)
        for name in BookmarkFilters.__struct_fields__
        if getattr(where, name) is not None
    }
    mark = BookmarkCreated(
        bookmark_id=new_id(),
        persona_id=where.persona_id,
        name="Case",
        time_from=where.occurred_from,
        time_to=where.occurred_to,
        filters=msgspec.convert(filters, BookmarkFilters),
    )
    manager.commit(mark)
    return [r.id for r in bookmark_memories(manager, mark.bookmark_id)]


READS: dict[str, Callable[[HybridDatabaseManager, MemoryFilter], list[str]]] = {
    "repository": _repository,
    "search": _search,
    "timeline": _timeline,
    "bookmark": _bookmark,
}
BOOKMARKS_CANNOT_SAY = {"created_from", "created_to", "include_deleted"}


def _params() -> list[Any]:
    params = []
    for case, (fields, _) in CASES.items():
        for read in READS:
            if read == "bookmark" and BOOKMARKS_CANNOT_SAY & fields.keys():
                continue
            params.append(pytest.param(case, read, id=f"{read}-{case}"))
    return params


@pytest.fixture(scope="module", params=READERS)
def garden(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HybridDatabaseManager]:
    """The memories above, once per reader; the cases only add bookmarks."""
    with open_reader(request.param, tmp_path_factory.mktemp("garden")) as reader:
        _plant(reader)
        yield reader


def _plant(reader: HybridDatabaseManager) -> None:
    reader.commit(
        PersonaCreated(persona_id="p1", name="P1"), PersonaCreated(persona_id="p2", name="P2")
    )
    reader.commit(
        *[
            MemoryImported(
                memory_id=memory_id,
                persona_id=fields.get("persona", "p1"),
                content=f"the garden, {memory_id}",
                source="test",
                created_at=fields["at"],
                updated_at=fields["at"],
                occurred_at=fields["at"],
                **{k: v for k, v in fields.items() if k in {"tier", "type", "tags", "importance"}},
            )
            for memory_id, fields in MEMORIES.items()
        ],
        MemoryDeleted(memory_id="gone", persona_id="p1"),
    )


@pytest.mark.parametrize(("case", "read"), _params())
def test_a_filter_field_means_the_same_to_every_read(
    garden: HybridDatabaseManager, case: str, read: str
) -> None:
    fields, expected = CASES[case]
    where = MemoryFilter(**{"persona_id": "p1", **fields})
    if read == "search" and not garden.use_livestore and _on_sqlite(garden):
        with pytest.raises(QueryError, match="switch the store on"):
            READS[read](garden, where)
        return
    assert sorted(READS[read](garden, where)) == expected


def _on_sqlite(manager: HybridDatabaseManager) -> bool:
    return manager.shards.shards[0].engine.dialect.name == "sqlite"


@pytest.mark.parametrize(
    ("hours", "message"),
    [((9, 9), r"got \(9, 9\)"), ((17, 9), r"got \(17, 9\)"), ((0, 25), r"got \(0, 25\)")],
)
def test_hours_out_of_order_or_range_are_refused(hours: tuple[int, int], message: str) -> None:
    with pytest.raises(QueryError, match=message):
        MemoryFilter(hours=hours)


def test_times_without_a_time_zone_are_refused() -> None:
    with pytest.raises(QueryError, match="occurred_to 2026-05-01T00:00:00 has no time zone"):
        MemoryFilter(occurred_to=datetime(2026, 5, 1))


@pytest.mark.parametrize("field", ["importance_min", "importance_max"])
def test_an_importance_that_is_not_a_number_is_refused(field: str) -> None:
    # Every comparison with NaN is false: the read would find nothing and say nothing.
    with pytest.raises(QueryError, match=f"{field} must be a number, got nan"):
        MemoryFilter(**{field: float("nan")})
