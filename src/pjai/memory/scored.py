"""A persona's live memories scored at a time, best first: what the optimizer ranks
(:mod:`pjai.memory.optimizer`), each with the score :mod:`pjai.memory.scoring` gives it
and what the optimizer's rules read of it (its tier, pinned, archived, restricted).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, select

from pjai.memory.backend import Backend
from pjai.memory.classify import RESTRICTED
from pjai.memory.scoring import SECONDS_PER_DAY, MemoryFacts, recency, score
from pjai.schema.expressions import has_tag
from pjai.schema.models import Persona
from pjai.schema.selection import MemoryFilter, memory_conditions
from pjai.schema.tables import memories, memory_links
from pjai.schema.types import AnySelect

__all__ = ["ScoredMemory", "scored_memories"]


def _memories(persona_id: str) -> AnySelect:
    """The persona's live memories with what scoring needs, links to live memories
    counted (``temporal`` ones, a conversation's sequence, not)."""
    m = memories.alias("m")

    def links(near: str, far: str) -> ColumnElement[int]:
        link, other = memory_links.alias("l"), memories.alias("o")
        return (
            select(func.count())
            .select_from(link)
            .join(other, and_(other.c.id == link.c[far], other.c.deleted_at.is_(None)))
            # A conversation's sequence (ingest links each turn to the next) says
            # nothing of a memory's worth: only the other kinds count.
            .where(link.c[near] == m.c.id, link.c.kind != "temporal")
            .scalar_subquery()
        )

    c = m.c
    return select(
        c.id,
        c.tier,
        c.importance,
        c.created_at,
        c.last_accessed_at,
        c.access_count,
        c.archived_at,
        c.pinned,
        has_tag(c.tags, RESTRICTED).label("restricted"),
        (links("source_id", "target_id") + links("target_id", "source_id")).label("links"),
    ).where(*memory_conditions(MemoryFilter(persona_id=persona_id), m))


@dataclass(frozen=True, slots=True)
class ScoredMemory:
    """A live memory with what ranking needs."""

    id: str
    tier: str
    importance: float
    created_at: datetime
    archived: bool
    score: float
    recency: float
    recently_opened: bool
    pinned: bool = False
    restricted: bool = False
    """Tagged ``restricted``: it holds personal data of a restricted class."""


def scored_memories(backend: Backend, persona: Persona, now: datetime) -> list[ScoredMemory]:
    """The persona's live memories with their scores at ``now``, best first."""
    config = persona.memory.scoring
    scored = []
    for row in backend.query(_memories(persona.id)):
        facts = MemoryFacts(
            importance=row.importance,
            created_at=row.created_at,
            last_accessed_at=row.last_accessed_at,
            access_count=row.access_count,
            link_count=row.links,
        )
        # In days, as floats: a half-life may be longer than any timedelta.
        opened = row.last_accessed_at is not None and (
            (now - row.last_accessed_at).total_seconds() / SECONDS_PER_DAY <= config.half_life_days
        )
        scored.append(
            ScoredMemory(
                row.id,
                row.tier,
                row.importance,
                row.created_at,
                row.archived_at is not None,
                score(facts, now, config),
                recency(facts, now, config),
                opened,
                bool(row.pinned),
                bool(row.restricted),
            )
        )
    scored.sort(key=lambda m: (-m.score, m.id))
    return scored
