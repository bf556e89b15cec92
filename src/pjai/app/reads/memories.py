"""Reads for the memory explorer: a page of a persona's memories and how many match,
the timeline, bookmarks, one memory with its links, the graph around it, and what an
optimizer run would do.

Pages and counts select memories with :func:`pjai.schema.selection.memory_conditions`,
as every other read of memories does, so a filter means the same here as in the CLI.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, select

from pjai.errors import NotFoundError
from pjai.hybrid import HybridDatabaseManager, spread
from pjai.memory.graph import neighbours
from pjai.memory.optimizer import OptimizationReport, load_persona, plan, session_start
from pjai.memory.scored import scored_memories
from pjai.memory.timeline import Unit, timeline_query
from pjai.schema.selection import MemoryFilter, memory_conditions
from pjai.schema.tables import bookmarks as bookmarks_table
from pjai.schema.tables import memories, memory_links
from pjai.schema.types import read_text, utc_now
from pjai.sql.repositories import MemoryOrder, memories_query
from pjai.store import LiveQuery, Row

__all__ = [
    "LISTED",
    "Graph",
    "GraphNode",
    "bookmarks",
    "by_ids",
    "count",
    "graph",
    "links",
    "memory",
    "names",
    "optimize_preview",
    "page",
    "timeline",
    "types",
]

_m = memories.c

LISTED = (
    _m.id,
    _m.name,
    _m.type,
    _m.tier,
    _m.importance,
    _m.tags,
    _m.occurred_at,
    _m.access_count,
    _m.pinned,
    _m.archived_at,
    _m.deleted_at,
    _m.content,
)
"""What a row of the explorer's table reads of a memory (its content names a memory
that has no name)."""


def page(
    manager: HybridDatabaseManager,
    where: MemoryFilter,
    *,
    order: MemoryOrder = "occurred_at",
    descending: bool = True,
    limit: int = 25,
    offset: int = 0,
) -> LiveQuery:
    """One page of the memories ``where`` selects, sorted by ``order`` then id (newest
    first by default: an index serves that order)."""
    query = memories_query(where, order=order, descending=descending, limit=limit)
    return manager.live(query.with_only_columns(*LISTED).offset(offset))


def count(manager: HybridDatabaseManager, where: MemoryFilter) -> LiveQuery:
    """How many memories ``where`` selects (one row, ``n``)."""
    query = select(func.count().label("n")).select_from(memories)
    return manager.live(query.where(*memory_conditions(where)))


def by_ids(manager: HybridDatabaseManager, ids: Sequence[str], *, deleted: bool) -> LiveQuery:
    """The memories with these ids (deleted ones too with ``deleted``), in no order."""
    query = select(*LISTED).where(_m.id.in_(list(ids)))
    return manager.live(spread(query if deleted else query.where(_m.deleted_at.is_(None))))


def types(manager: HybridDatabaseManager, persona_id: str) -> list[str]:
    """The memory types a persona's memories have, by name (a plain read: it scans the
    persona's memories, too much to repeat after every commit)."""
    query = select(_m.type).where(_m.persona_id == persona_id).distinct().order_by(_m.type)
    return [r.type for r in manager.query(query)]


def timeline(
    manager: HybridDatabaseManager, persona_id: str, unit: Unit, where: MemoryFilter
) -> LiveQuery:
    """The persona's timeline of what ``where`` selects (read with
    :func:`pjai.memory.timeline.timeline_from_rows`)."""
    return manager.live(timeline_query(persona_id, unit, where=where))


def bookmarks(manager: HybridDatabaseManager, persona_id: str) -> LiveQuery:
    """A persona's live bookmarks by name."""
    b = bookmarks_table.c
    query = (
        select(bookmarks_table)
        .where(b.persona_id == persona_id, b.deleted_at.is_(None))
        .order_by(b.name, b.id)
    )
    return manager.live(query)


def memory(manager: HybridDatabaseManager, memory_id: str) -> LiveQuery:
    """One memory, deleted or not (no row if there is none)."""
    return manager.live(spread(select(memories).where(_m.id == memory_id)))


def links(manager: HybridDatabaseManager, memory_id: str) -> LiveQuery:
    """A memory's links, either way, strongest first, with the other memory's name and
    whether it is deleted (``other_id``, ``other_name``, ``other_deleted``)."""
    link = memory_links.c
    other = memories.alias("other")
    other_id = func.coalesce(
        *(func.nullif(column, memory_id) for column in (link.target_id, link.source_id))
    )
    query = (
        select(
            link.source_id,
            link.target_id,
            link.kind,
            link.strength,
            other.c.id.label("other_id"),
            other.c.name.label("other_name"),
            other.c.deleted_at.label("other_deleted"),
        )
        .select_from(memory_links.join(other, other.c.id == other_id))
        .where(or_(link.source_id == memory_id, link.target_id == memory_id))
    )
    # A memory's links and the memories they join are its persona's: on one shard.
    order = (link.strength.desc(), link.source_id, link.target_id, link.kind)
    return manager.live(spread(query, order_by=order))


def names(manager: HybridDatabaseManager, ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """The names and texts of these memories, by id (a memory without a name is shown
    by its text)."""
    if not ids:
        return {}
    rows = manager.query(select(_m.id, _m.name, _m.content).where(_m.id.in_(list(ids))))
    return {r.id: (r.name, read_text(r.content)) for r in rows}


@dataclass(frozen=True, slots=True)
class GraphNode:
    """A memory in the graph around another, and how many links away it is."""

    id: str
    name: str
    tier: str
    importance: float
    depth: int


@dataclass(frozen=True, slots=True)
class Graph:
    """The live memories within a few links of one memory, and the links among them."""

    nodes: list[GraphNode]
    links: list[Row]


def graph(manager: HybridDatabaseManager, memory_id: str, *, depth: int = 2) -> Graph:
    """The graph around a memory: it, the live memories within ``depth`` links of it,
    and every link between two of them."""
    depths = {memory_id: 0} | {
        n.memory_id: n.depth for n in neighbours(manager, memory_id, depth=depth)
    }
    ids = list(depths)
    rows = manager.query(select(_m.id, _m.name, _m.tier, _m.importance).where(_m.id.in_(ids)))
    nodes = sorted(
        (GraphNode(r.id, r.name, r.tier, r.importance, depths[r.id]) for r in rows),
        key=lambda n: (n.depth, n.id),
    )
    link = memory_links.c
    edges = manager.query(
        select(link.source_id, link.target_id, link.kind, link.strength)
        .where(and_(link.source_id.in_(ids), link.target_id.in_(ids)))
        .order_by(link.source_id, link.target_id, link.kind)
    )
    return Graph(nodes, edges)


def optimize_preview(
    manager: HybridDatabaseManager, persona_id: str, *, now: datetime | None = None
) -> OptimizationReport:
    """What an optimizer run for the persona would do now, memory by memory, without
    doing it: the optimizer's own plan, not committed."""
    exact = now or utc_now()
    at = exact.replace(minute=0, second=0, microsecond=0)
    persona = load_persona(manager, persona_id)
    if persona is None:
        raise NotFoundError(f"no live persona {persona_id!r}")
    # As optimize() plans it: the privacy rules and retention at the exact time, the
    # session rule from the latest conversation begun by then.
    keep = persona.privacy.memory_retention
    start = None if keep else session_start(manager, persona_id, exact)
    memories = scored_memories(manager, persona, at)
    _, report = plan(persona, memories, at, session_start=start, privacy_at=exact)
    return report
