"""The timeline: a persona's memories bucketed by when they happened, and bookmarks.

Buckets are hours, days, ISO 8601 weeks or months of ``occurred_at`` (UTC), each with
its memory count and importance statistics. A week runs Monday to Sunday and is keyed by
its ISO year and week number (``2025-W01`` starts on Monday 30 December 2024). The
timeline's ``start`` and ``end`` are a window, ``end`` left out; a ``where`` filter
narrows it further (:class:`pjai.schema.MemoryFilter`).

A bookmark names a time range, both ends included, and filters; it shows the memories
the :class:`~pjai.schema.MemoryFilter` made of them selects
(:func:`pjai.schema.bookmark_filter`). The presets make the usual ones: "today" runs
from midnight to 23:59:59.999999, "this week" from Monday to Sunday as late.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal, get_args

import msgspec
from sqlalchemy import func, select

from pjai.errors import NotFoundError, QueryError
from pjai.memory.backend import Backend
from pjai.schema import BookmarkCreated, BookmarkFilters, new_id
from pjai.schema.expressions import time_bucket
from pjai.schema.selection import MemoryFilter, bookmark_filter, memory_conditions
from pjai.schema.tables import bookmarks as bookmarks_table
from pjai.schema.tables import memories
from pjai.schema.types import AnySelect, as_datetime, utc_now

__all__ = [
    "PRESETS",
    "UNITS",
    "Bucket",
    "Unit",
    "bookmark_memories",
    "bookmarks",
    "get_bookmark",
    "preset",
    "timeline",
    "timeline_from_rows",
    "timeline_query",
]

Unit = Literal["hour", "day", "week", "month"]

UNITS: tuple[Unit, ...] = get_args(Unit)

_LAST_INSTANT = timedelta(microseconds=1)
"""PJai keeps times to the microsecond: ``t < end`` is ``t <= end - 1 µs``."""


@dataclass(frozen=True, slots=True)
class Bucket:
    """One stretch of the timeline."""

    key: str
    memories: int
    importance_avg: float
    importance_min: float
    importance_max: float
    first: datetime
    last: datetime


def _window(
    where: MemoryFilter | None, persona_id: str, start: datetime | None, end: datetime | None
) -> MemoryFilter:
    """``where`` for the persona, narrowed to ``start <= occurred_at < end``."""
    where = where or MemoryFilter()
    low, high = where.occurred_from, where.occurred_to
    if start is not None:
        low = start if low is None else max(low, start)
    if end is not None:
        last = end - _LAST_INSTANT
        high = last if high is None else min(high, last)
    return msgspec.structs.replace(
        where, persona_id=persona_id, occurred_from=low, occurred_to=high
    )


def timeline_query(
    persona_id: str,
    unit: Unit = "day",
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    where: MemoryFilter | None = None,
) -> AnySelect:
    """The query behind :func:`timeline` (for a live query); weeks come back as days."""
    if unit not in UNITS:
        raise QueryError(f"timeline unit {unit!r}: use hour, day, week or month")
    c = memories.c
    bucket = time_bucket(c.occurred_at, "day" if unit == "week" else unit)
    return (
        select(
            bucket.label("bucket"),
            func.count().label("n"),
            func.sum(c.importance).label("total"),
            func.min(c.importance).label("low"),
            func.max(c.importance).label("high"),
            func.min(c.occurred_at).label("first"),
            func.max(c.occurred_at).label("last"),
        )
        .where(*memory_conditions(_window(where, persona_id, start, end)))
        .group_by(bucket)
        .order_by(bucket)
    )


def timeline_from_rows(rows: list[Any], unit: Unit = "day") -> list[Bucket]:
    """The buckets from the rows of :func:`timeline_query` (days merged into ISO weeks)."""
    groups: dict[str, list[Any]] = {}
    for r in rows:
        key = r.bucket
        if unit == "week":
            year, week, _ = date.fromisoformat(r.bucket).isocalendar()
            key = f"{year:04d}-W{week:02d}"
        groups.setdefault(key, []).append(r)
    buckets = []
    for key, group in groups.items():
        n = sum(r.n for r in group)
        buckets.append(
            Bucket(
                key,
                n,
                round(sum(r.total for r in group) / n, 4),
                min(r.low for r in group),
                max(r.high for r in group),
                min(as_datetime(r.first) for r in group),
                max(as_datetime(r.last) for r in group),
            )
        )
    return buckets


def timeline(
    backend: Backend,
    persona_id: str,
    unit: Unit = "day",
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    where: MemoryFilter | None = None,
) -> list[Bucket]:
    """Counts and importance statistics per ``unit`` of the persona's memories.

    Those that ``where`` selects (live ones by default) and that occurred from ``start``
    up to, not including, ``end``.
    """
    query = timeline_query(persona_id, unit, start=start, end=end, where=where)
    return timeline_from_rows(backend.query(query), unit)


def _day(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


PRESETS = ("today", "this_week", "working_hours", "hot_memories")


def _span(start: datetime, days: int) -> dict[str, datetime]:
    return {"time_from": start, "time_to": start + timedelta(days=days) - _LAST_INSTANT}


def preset(name: str, persona_id: str, *, now: datetime | None = None) -> BookmarkCreated:
    """A bookmark from the presets: today, this week, working hours, hot memories."""
    now = now or utc_now()
    monday = _day(now) - timedelta(days=now.weekday())
    presets: dict[str, dict[str, Any]] = {
        "today": {"name": "Today", **_span(_day(now), 1), "colour": "#2e86de"},
        "this_week": {"name": "This week", **_span(monday, 7), "colour": "#10ac84"},
        "working_hours": {
            "name": "Working hours",
            "description": "09:00-17:00 UTC",
            "filters": BookmarkFilters(hours=[9, 17]),
            "colour": "#ee5253",
        },
        "hot_memories": {
            "name": "Hot memories",
            "filters": BookmarkFilters(tiers=["hot"]),
            "colour": "#ff9f43",
        },
    }
    if name not in presets:
        raise QueryError(f"no bookmark preset {name!r}; presets are {', '.join(PRESETS)}")
    return BookmarkCreated(bookmark_id=new_id(), persona_id=persona_id, **presets[name])


def bookmarks(backend: Backend, persona_id: str) -> list[Any]:
    """A persona's live bookmarks by name."""
    b = bookmarks_table.c
    return backend.query(
        select(bookmarks_table)
        .where(b.persona_id == persona_id, b.deleted_at.is_(None))
        .order_by(b.name, b.id)
    )


def get_bookmark(backend: Backend, bookmark_id: str) -> Any:
    """A live bookmark's row, or :class:`~pjai.errors.NotFoundError`."""
    b = bookmarks_table.c
    rows = backend.query(select(bookmarks_table).where(b.id == bookmark_id, b.deleted_at.is_(None)))
    if not rows:
        raise NotFoundError(f"no bookmark {bookmark_id!r}")
    return rows[0]


def bookmark_memories(backend: Backend, bookmark_id: str, *, limit: int = 200) -> list[Any]:
    """The live memories a bookmark shows, most recent first."""
    mark = get_bookmark(backend, bookmark_id)
    where = bookmark_filter(mark.persona_id, mark.time_from, mark.time_to, mark.filters)
    return backend.query(
        select(memories)
        .where(*memory_conditions(where))
        .order_by(memories.c.occurred_at.desc(), memories.c.id)
        .limit(limit)
    )
