"""Typed reads of personas and memories from the SQL primary, across shards.

A read that names a persona goes to that persona's shard; others run on every shard
and are merged (sorted and cut again, counts and sums added up). Which memories a read
selects is a :class:`pjai.schema.MemoryFilter`, compiled as everywhere else in PJai.
Rows of shards that keep the sensitive columns sealed are opened as they are read
(reads filter and sort on other columns only).
"""

from __future__ import annotations

import heapq
from collections import namedtuple
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from functools import cache
from typing import Any, Literal

import msgspec
from msgspec import Struct
from sqlalchemy import func, select

from pjai.schema.expressions import contains_text, count_if
from pjai.schema.models import Memory, Persona, memory_from_row, persona_from_row
from pjai.schema.selection import MemoryFilter, memory_conditions
from pjai.schema.tables import TIERS, memories, personas
from pjai.schema.types import AnySelect, utc_now
from pjai.sql.shards import Shard, ShardSet

__all__ = [
    "MemoryFilter",
    "MemoryOrder",
    "MemoryRepository",
    "MemoryStatistics",
    "PersonaRepository",
    "PersonaStatistics",
    "memories_query",
    "personas_query",
]

MemoryOrder = Literal["importance", "occurred_at", "created_at", "access_count"]

HIGH_IMPORTANCE = 0.8
FREQUENT_ACCESSES = 5


class MemoryStatistics(Struct, frozen=True, kw_only=True):
    """Counts and averages over the memories a filter selects."""

    total: int
    by_tier: dict[str, int]
    by_type: dict[str, int]
    average_importance: float | None
    high_importance: int
    frequently_accessed: int
    accessed_last_24h: int
    deleted: int


class PersonaStatistics(Struct, frozen=True, kw_only=True):
    """Counts of personas."""

    total: int
    active: int
    deleted: int


def _merge_sorted(
    parts: Sequence[Sequence[Any]], key: Callable[[Any], Any], limit: int | None
) -> list[Any]:
    merged = heapq.merge(*parts, key=key)
    return [row for _, row in zip(range(limit), merged, strict=False)] if limit else list(merged)


@cache
def _opened_row(fields: tuple[str, ...]) -> Any:
    """A row type with ``fields`` (by position and by name), for rows opened in Python."""
    return namedtuple("OpenedRow", fields)


class _Reader:
    def __init__(self, shards: ShardSet) -> None:
        self._shards = shards

    def _targets(self, persona_id: str | None) -> list[Shard]:
        return [self._shards.for_persona(persona_id)] if persona_id else list(self._shards)

    def _rows(self, shard: Shard, query: AnySelect) -> list[Any]:
        with shard.writer.connection("reading from SQL", one_statement=True) as conn:
            rows = list(conn.execute(query).all())
        sealer = self._shards.sealer
        if sealer is None or not rows:
            return rows
        froms = query.get_final_froms()  # compiles the query: about 1 ms, so only here
        if len(froms) != 1 or not hasattr(froms[0], "name"):
            return rows
        table = str(froms[0].name)
        if table not in sealer.columns:
            return rows
        opened = _opened_row(tuple(rows[0]._fields))
        return [opened(**sealer.open_row(table, dict(row._mapping))) for row in rows]

    def _each(self, persona_id: str | None, query: AnySelect) -> Iterator[list[Any]]:
        for shard in self._targets(persona_id):
            yield self._rows(shard, query)

    def _first(self, persona_id: str | None, query: AnySelect) -> Any | None:
        """The first row ``query`` finds, shard by shard; the shards after it are not read."""
        return next((rows[0] for rows in self._each(persona_id, query) if rows), None)

    def _count(self, persona_id: str | None, query: AnySelect) -> int:
        """The count ``query`` selects, added up over the shards."""
        return sum(rows[0][0] for rows in self._each(persona_id, query))


class PersonaRepository(_Reader):
    """Reads personas."""

    def get(self, persona_id: str) -> Persona | None:
        """The persona, deleted or not, or ``None``."""
        query = select(personas).where(personas.c.id == persona_id)
        rows = next(self._each(persona_id, query))
        return persona_from_row(rows[0]) if rows else None

    def list(
        self, *, include_deleted: bool = False, name_contains: str | None = None
    ) -> list[Persona]:
        """Personas ordered by name; with ``name_contains``, those whose name holds that text.

        The text matches literally (``%`` and ``_`` are not wildcards), in any case.
        """
        query = personas_query(include_deleted=include_deleted, name_contains=name_contains)
        parts = [[persona_from_row(r) for r in rows] for rows in self._each(None, query)]
        return _merge_sorted(parts, key=lambda p: (p.name, p.id), limit=None)

    def active(self) -> Persona | None:
        """The active persona, if one is."""
        query = select(personas).where(personas.c.is_active, personas.c.deleted_at.is_(None))
        row = self._first(None, query)
        return None if row is None else persona_from_row(row)

    def count(self, *, include_deleted: bool = False) -> int:
        """How many personas there are."""
        query = select(func.count()).select_from(personas)
        if not include_deleted:
            query = query.where(personas.c.deleted_at.is_(None))
        return self._count(None, query)

    def statistics(self) -> PersonaStatistics:
        """Total, active and deleted personas."""
        query = select(
            func.count(),
            count_if(personas.c.is_active),
            count_if(personas.c.deleted_at.is_not(None)),
        ).select_from(personas)
        totals = [0, 0, 0]
        for rows in self._each(None, query):
            for i, value in enumerate(rows[0]):
                totals[i] += int(value)
        return PersonaStatistics(total=totals[0], active=totals[1], deleted=totals[2])


def personas_query(*, include_deleted: bool = False, name_contains: str | None = None) -> AnySelect:
    """Personas ordered by name then id; with ``name_contains``, those whose name holds
    that text, literally (``%`` and ``_`` are not wildcards) and in any case."""
    query = select(personas)
    if not include_deleted:
        query = query.where(personas.c.deleted_at.is_(None))
    if name_contains:
        query = query.where(contains_text(personas.c.name, name_contains))
    return query.order_by(personas.c.name, personas.c.id)


def memories_query(
    where: MemoryFilter,
    *,
    order: MemoryOrder = "importance",
    descending: bool = True,
    limit: int | None = 100,
    offset: int = 0,
) -> AnySelect:
    """The memories matching ``where``, sorted by ``order`` then id, past the first
    ``offset``: one select that runs on any shard and on the store."""
    column = memories.c[order]
    sort = (column.desc(), memories.c.id) if descending else (column.asc(), memories.c.id)
    query = select(memories).where(*memory_conditions(where)).order_by(*sort)
    if offset:
        query = query.offset(offset)
    return query if limit is None else query.limit(limit)


class MemoryRepository(_Reader):
    """Reads memories."""

    def get(self, memory_id: str, persona_id: str | None = None) -> Memory | None:
        """The memory, deleted or not, or ``None``."""
        row = self._first(persona_id, select(memories).where(memories.c.id == memory_id))
        return None if row is None else memory_from_row(row)

    def list(
        self,
        where: MemoryFilter | None = None,
        *,
        order: MemoryOrder = "importance",
        descending: bool = True,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[Memory]:
        """Memories matching ``where``, sorted by ``order`` then id."""
        where = where or MemoryFilter()
        query = memories_query(
            where,
            order=order,
            descending=descending,
            limit=None if limit is None else limit + offset,
        )
        parts = [[memory_from_row(r) for r in rows] for rows in self._each(where.persona_id, query)]

        def key(memory: Memory) -> tuple[Any, str]:
            value = getattr(memory, order)
            return (_Reverse(value) if descending else value, memory.id)

        merged = _merge_sorted(parts, key=key, limit=None if limit is None else limit + offset)
        return merged[offset:]

    def count(self, where: MemoryFilter | None = None) -> int:
        """How many memories match ``where``."""
        where = where or MemoryFilter()
        query = select(func.count()).select_from(memories).where(*memory_conditions(where))
        return self._count(where.persona_id, query)

    def statistics(self, where: MemoryFilter | None = None) -> MemoryStatistics:
        """Totals per tier and type, importance and access figures."""
        where = where or MemoryFilter()
        conditions = memory_conditions(msgspec.structs.replace(where, include_deleted=True))
        live = memories.c.deleted_at.is_(None)
        day_ago = utc_now() - timedelta(days=1)
        totals = select(
            func.count(),
            func.sum(memories.c.importance),
            count_if(memories.c.importance >= HIGH_IMPORTANCE),
            count_if(memories.c.access_count >= FREQUENT_ACCESSES),
            count_if(memories.c.last_accessed_at >= day_ago),
        ).where(*conditions, live)
        deleted = select(func.count()).select_from(memories).where(*conditions, ~live)
        by_tier = (
            select(memories.c.tier, func.count()).where(*conditions, live).group_by(memories.c.tier)
        )
        by_type = (
            select(memories.c.type, func.count()).where(*conditions, live).group_by(memories.c.type)
        )
        count = importance = high = frequent = recent = gone = 0
        tiers: dict[str, int] = dict.fromkeys(TIERS, 0)
        types: dict[str, int] = {}
        for shard in self._targets(where.persona_id):
            row = self._rows(shard, totals)[0]
            count += row[0]
            importance += row[1] or 0
            high += int(row[2])
            frequent += int(row[3])
            recent += int(row[4])
            gone += self._rows(shard, deleted)[0][0]
            for tier, n in self._rows(shard, by_tier):
                tiers[tier] = tiers.get(tier, 0) + n
            for kind, n in self._rows(shard, by_type):
                types[kind] = types.get(kind, 0) + n
        return MemoryStatistics(
            total=count,
            by_tier=tiers,
            by_type=dict(sorted(types.items())),
            average_importance=importance / count if count else None,
            high_importance=high,
            frequently_accessed=frequent,
            accessed_last_24h=recent,
            deleted=gone,
        )


class _Reverse:
    """Wraps a value so that sorting puts larger values first (None last)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Reverse) -> bool:
        if self.value is None or other.value is None:
            return other.value is None and self.value is not None
        return bool(self.value > other.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reverse) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)
