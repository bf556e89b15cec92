"""Which memories a read wants, said once and compiled once.

:class:`MemoryFilter` names a selection of memories: persona, tiers, types, tags,
importance range, the ``occurred_at`` and ``created_at`` ranges, hours of the day, and
whether deleted memories count. :func:`memory_conditions` turns it into SQLAlchemy
conditions on ``memories`` that every backend runs (:mod:`pjai.schema.expressions`).
The SQL repositories, search, bookmarks and the timeline all select memories this way,
so a filter means the same thing wherever it is used:

- an empty field (``None`` or empty) does not restrict;
- tiers and types: any of those given; tags: every one given;
- ranges (importance, ``occurred_*``, ``created_*``) include both ends;
- hours ``(from, to)``: memories that occurred from ``from`` o'clock up to, not
  including, ``to`` o'clock, UTC (``(9, 17)`` is 09:00 to 16:59:59);
- deleted memories are left out unless ``include_deleted``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import msgspec
from msgspec import Struct
from sqlalchemy import ColumnElement, FromClause

from pjai.errors import QueryError
from pjai.schema.bookmarks import BookmarkFilters
from pjai.schema.expressions import has_tag, utc_hour
from pjai.schema.fields import Tier
from pjai.schema.tables import memories

__all__ = ["MemoryFilter", "bookmark_filter", "memory_conditions"]


class MemoryFilter(Struct, frozen=True, kw_only=True):
    """Which memories to read (see the module doc for what each field means)."""

    persona_id: str | None = None
    tiers: Sequence[Tier] | None = None
    types: Sequence[str] | None = None
    tags: Sequence[str] | None = None
    importance_min: float | None = None
    importance_max: float | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    hours: tuple[int, int] | None = None
    include_deleted: bool = False

    def __post_init__(self) -> None:
        if self.hours is not None:
            low, high = self.hours
            if not 0 <= low < high <= 24:
                raise QueryError(
                    f"hours must be (from, to) with 0 <= from < to <= 24, got {self.hours}"
                )
        for name in ("importance_min", "importance_max"):
            value = getattr(self, name)
            if value is not None and math.isnan(value):
                # Every comparison with NaN is false: the read would silently find nothing.
                raise QueryError(f"{name} must be a number, got {value}")
        for name in ("occurred_from", "occurred_to", "created_from", "created_to"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise QueryError(f"{name} {value.isoformat()} has no time zone; give UTC times")


def memory_conditions(
    where: MemoryFilter, table: FromClause = memories
) -> list[ColumnElement[bool]]:
    """The conditions on ``table`` (``memories`` or an alias of it) that select ``where``."""
    c = table.c
    conditions: list[ColumnElement[bool]] = []
    if where.persona_id is not None:
        conditions.append(c.persona_id == where.persona_id)
    if where.tiers:
        conditions.append(c.tier.in_(list(where.tiers)))
    if where.types:
        conditions.append(c.type.in_(list(where.types)))
    conditions.extend(has_tag(c.tags, tag) for tag in where.tags or ())
    for value, column, at_least in (
        (where.importance_min, c.importance, True),
        (where.importance_max, c.importance, False),
        (where.occurred_from, c.occurred_at, True),
        (where.occurred_to, c.occurred_at, False),
        (where.created_from, c.created_at, True),
        (where.created_to, c.created_at, False),
    ):
        if value is not None:
            conditions.append(column >= value if at_least else column <= value)
    if where.hours is not None:
        hour = utc_hour(c.occurred_at)
        conditions.extend([hour >= where.hours[0], hour < where.hours[1]])
    if not where.include_deleted:
        conditions.append(c.deleted_at.is_(None))
    return conditions


def bookmark_filter(
    persona_id: str,
    time_from: datetime | None,
    time_to: datetime | None,
    filters: BookmarkFilters | Mapping[str, Any] | None,
) -> MemoryFilter:
    """The live memories a bookmark shows: its persona, time range (inclusive) and filters."""
    given = (
        filters
        if isinstance(filters, BookmarkFilters)
        else msgspec.convert(filters or {}, BookmarkFilters)
    )
    return MemoryFilter(
        persona_id=persona_id,
        tiers=given.tiers,
        types=given.types,
        tags=given.tags,
        importance_min=given.importance_min,
        importance_max=given.importance_max,
        occurred_from=time_from,
        occurred_to=time_to,
        hours=(given.hours[0], given.hours[1]) if given.hours else None,
    )
