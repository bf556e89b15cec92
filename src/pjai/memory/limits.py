"""A persona's limits, and whether a commit calls for an optimizer run.

One query (:func:`query`) reads what the memory system weighs after each change: the
persona's capacities, ``max_memories``, retention and privacy settings beside what its
live memories stand at. :func:`crossed` says from that row whether an auto-optimizing
persona is over a limit (a full run is due), :func:`privacy_due` whether a privacy rule
deletes a memory (a privacy run is due, whether or not the persona auto-optimizes).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, or_, select

from pjai.memory import optimizer
from pjai.memory.backend import Backend
from pjai.memory.classify import RESTRICTED
from pjai.schema.expressions import count_if
from pjai.schema.selection import MemoryFilter, memory_conditions
from pjai.schema.tables import TIERS, memories, personas
from pjai.schema.types import AnySelect, as_datetime
from pjai.store.query import Row

__all__ = ["crossed", "privacy_due", "query"]


def query(persona_id: str) -> AnySelect:
    """A live persona's limits and what its live memories stand at."""
    p, m = personas.c, memories.c
    return (
        select(
            p.memory_auto_optimize.label("auto"),
            p.memory_max_memories.label("max_memories"),
            p.memory_retention_days.label("retention_days"),
            *(getattr(p, f"memory_capacity_{tier}").label(f"cap_{tier}") for tier in TIERS),
            *(count_if(m.tier == tier).label(tier) for tier in TIERS),
            # memories the optimizer may move, per tier: pinned and archived ones stay
            *(
                count_if(and_(m.tier == tier, ~m.pinned, m.archived_at.is_(None))).label(
                    f"free_{tier}"
                )
                for tier in TIERS
            ),
            func.count(m.id).label("total"),
            # what the optimizer may delete when there are more than max_memories
            count_if(and_(m.importance < p.memory_importance_threshold, ~m.pinned)).label(
                "expendable"
            ),
            # archived memories were dealt with when retention archives (it archives a
            # memory only once), not when it deletes
            func.min(
                case(
                    (
                        or_(m.archived_at.is_(None), p.memory_retention_action == "delete"),
                        m.created_at,
                    )
                )
            ).label("oldest"),
            # what the privacy rules look at
            p.privacy_memory_retention.label("keep"),
            p.memory_restricted_retention_days.label("restricted_days"),
            func.min(m.created_at).label("first"),
        )
        .select_from(
            personas.outerjoin(memories, and_(m.persona_id == p.id, m.deleted_at.is_(None)))
        )
        .where(p.id == persona_id, p.deleted_at.is_(None))
        .group_by(p.id)
    )


def crossed(r: Row, now: datetime, *, free_space: bool = True) -> bool:
    """Whether, by the persona's row of :func:`query`, an auto-optimizing persona
    crossed a capacity, its size (unless no space is to be freed) or retention."""
    if not r.auto:
        return False
    room = r.total <= sum(getattr(r, f"cap_{tier}") for tier in TIERS)
    for tier in TIERS:
        # Over capacity and the optimizer can move some: not when all are pinned, nor
        # in the last tier when every tier is full (the run could put them nowhere). A
        # tier may pass its capacity by 1% before a run, which brings it back: one
        # memory more does not re-rank them all each time.
        cap = getattr(r, f"cap_{tier}")
        over = (getattr(r, tier) or 0) > cap + cap // 100 and getattr(r, f"free_{tier}")
        if over and (tier != TIERS[-1] or room):
            return True
    # Over max_memories, when the optimizer may delete some (below the threshold).
    if free_space and r.total > r.max_memories and r.expendable:
        return True
    oldest = as_datetime(r.oldest)
    if r.retention_days and oldest is not None:
        return bool(oldest < now - timedelta(days=r.retention_days))
    return False


def privacy_due(backend: Backend, persona_id: str, r: Row, now: datetime) -> bool:
    """Whether, by the persona's row of :func:`query`, a privacy rule deletes a memory
    (the restricted memories are looked at only for a persona that limits them)."""
    first = as_datetime(r.first)
    if not r.keep and first is not None:
        session = optimizer.session_start(backend, persona_id, now)
        if session is not None and first < session:
            return True
    days = r.restricted_days
    if not days:
        return False
    restricted = MemoryFilter(persona_id=persona_id, tags=[RESTRICTED])
    found = backend.query(
        select(func.min(memories.c.created_at).label("oldest")).where(
            *memory_conditions(restricted)
        )
    )
    oldest = as_datetime(found[0].oldest) if found else None
    return oldest is not None and oldest < now - timedelta(days=days)
