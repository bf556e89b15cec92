"""The optimizer: ranks a persona's memories and keeps tiers, size and retention in shape.

One run, for one persona, at ``now`` (truncated to the hour, so that runs close together
see the same scores):

1. Retention: live memories recorded (``created_at``) more than ``retention_days`` ago
   are archived (``v1.MemoryArchived``) or deleted (``v1.MemoryDeleted``), per the
   persona's retention action. Two privacy rules delete, pinned or not: memories tagged
   ``restricted`` older than ``restricted_retention_days`` (retention per data class,
   reason ``restricted``), and, with the persona's ``privacy.memory_retention`` off,
   every memory made before its latest conversation started (reason ``session``: a
   session runs from one conversation's start to the next, so nothing is kept past it;
   a conversation dated after the run's time begins no session yet).
2. Size: while more live memories remain than ``max_memories``, the lowest-scored ones
   whose importance is below the importance threshold are soft-deleted. If that is not
   enough, the report says so; important memories are never deleted for space.
3. Tiers: how many memories each tier should hold comes from the persona's target
   shares and capacities (:func:`pjai.memory.scoring.tier_targets`, the definition
   health measures fragmentation against). Pinned memories (the user chose their tier)
   and archived ones stay where they are and take up their tier's places; the others
   are ranked by score (ties by id) and fill the places left in hot, then in warm, then
   cold. Each memory whose tier changes gets a ``v1.MemoryTierChanged`` with its score
   and a reason:
   ``access_pattern`` for a promotion of a memory opened within the half-life,
   ``age_decay`` for a demotion of one whose recency fell below one half,
   ``importance_change`` for a memory whose importance was just changed (the memory
   system passes it), otherwise ``optimization``.

Everything happens through events, committed together: all or nothing. Running it again right after
commits nothing: the same data at the same hour gives the same ranks. The report lists
every memory the run moved, archived or deleted, with the reason.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import func, select

from pjai.errors import ConfigError, MaterializationError
from pjai.memory.backend import Backend
from pjai.memory.scored import ScoredMemory, scored_memories
from pjai.memory.scoring import tier_targets
from pjai.schema import MemoryArchived, MemoryDeleted, MemoryTierChanged
from pjai.schema.event import Event
from pjai.schema.fields import Tier, TierChangeReason
from pjai.schema.models import Persona, persona_from_row
from pjai.schema.tables import TIERS, conversations, personas
from pjai.schema.types import as_datetime, utc_now

__all__ = [
    "MemoryMove",
    "OptimizationReport",
    "load_persona",
    "optimize",
    "plan",
    "privacy_rule",
    "scored_memories",
    "session_start",
]

ATTEMPTS = 3

_guard = threading.Lock()
_runs: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)


@dataclass(frozen=True, slots=True)
class MemoryMove:
    """A memory an optimizer run moved to another tier, archived or deleted, and why.

    ``reason`` is a tier change's (``optimization``, ``access_pattern``,
    ``importance_change``, ``age_decay``), or ``retention``, ``restricted``,
    ``session`` or ``space`` for an archiving or a deletion. ``to`` is ``None`` for a
    deletion.
    """

    memory_id: str
    action: Literal["moved", "archived", "deleted"]
    tier: str
    to: str | None
    reason: str
    score: float


@dataclass(slots=True)
class OptimizationReport:
    """What an optimizer run did for one persona; ``moves`` says it memory by memory."""

    persona_id: str
    at: datetime
    archived: int = 0
    deleted_for_retention: int = 0
    deleted_for_privacy: int = 0
    """Deleted by the session rule or the retention of restricted memories."""
    deleted_for_space: int = 0
    promoted: int = 0
    demoted: int = 0
    events: int = 0
    tiers_before: dict[str, int] = field(default_factory=dict)
    tiers_after: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    moves: list[MemoryMove] = field(default_factory=list)


def load_persona(backend: Backend, persona_id: str) -> Persona | None:
    """The live persona, or ``None``."""
    p = personas.c
    rows = backend.query(select(personas).where(p.id == persona_id, p.deleted_at.is_(None)))
    return persona_from_row(rows[0]) if rows else None


def plan(
    persona: Persona,
    memories: list[ScoredMemory],
    now: datetime,
    importance_changed: Collection[str] = (),
    *,
    session_start: datetime | None = None,
    privacy_only: bool = False,
    privacy_at: datetime | None = None,
    free_space: bool = True,
) -> tuple[list[Event], OptimizationReport]:
    """The events one run commits, and its report (pure: nothing is written).

    ``session_start``: when the persona's current session began (:func:`session_start`;
    the session rule applies with ``privacy.memory_retention`` off). ``privacy_only``: apply the
    privacy rules and nothing else (a persona that does not auto-optimize).
    ``privacy_at``: the time the privacy rules and retention hold at (``now`` unless
    given: ranking uses the hour, a deadline the exact time). ``free_space=False``: no
    memory is deleted for space (a run a plugin's add started: it makes no room).
    """
    report = OptimizationReport(persona.id, now)
    report.tiers_before = _count(m.tier for m in memories)
    config = persona.memory
    events: list[Event] = []
    gone: set[str] = set()
    archived: set[str] = set()
    tiers = {m.id: m.tier for m in memories}

    for m in memories:
        why = privacy_rule(persona, m.created_at, m.restricted, privacy_at or now, session_start)
        if why is not None:
            events.append(MemoryDeleted(memory_id=m.id, persona_id=persona.id))
            gone.add(m.id)
            report.deleted_for_privacy += 1
            report.moves.append(MemoryMove(m.id, "deleted", m.tier, None, why, m.score))
    if privacy_only:
        report.tiers_after = _count(m.tier for m in memories if m.id not in gone)
        report.events = len(events)
        return events, report
    memories = [m for m in memories if m.id not in gone]

    if config.retention_days is not None:
        # At the exact time, as the rules above and the check that starts a run: at the
        # hour, a memory past retention would wait for the next hour, and every commit
        # meanwhile would start a run that does nothing.
        cutoff = (privacy_at or now) - timedelta(days=config.retention_days)
        for m in memories:
            if m.created_at >= cutoff:
                continue
            if config.retention_action == "delete":
                events.append(MemoryDeleted(memory_id=m.id, persona_id=persona.id))
                gone.add(m.id)
                report.deleted_for_retention += 1
                report.moves.append(MemoryMove(m.id, "deleted", m.tier, None, "retention", m.score))
            elif not m.archived:
                events.append(
                    MemoryArchived(memory_id=m.id, persona_id=persona.id, reason="retention")
                )
                archived.add(m.id)
                tiers[m.id] = "cold"
                report.archived += 1
                move = MemoryMove(m.id, "archived", m.tier, "cold", "retention", m.score)
                report.moves.append(move)

    live = [m for m in memories if m.id not in gone]
    excess = len(live) - config.max_memories
    if excess > 0 and free_space:
        # A pinned memory is the user's to keep, as its tier is.
        expendable = [
            m for m in reversed(live) if m.importance < config.importance_threshold and not m.pinned
        ]
        for m in expendable[:excess]:
            events.append(MemoryDeleted(memory_id=m.id, persona_id=persona.id))
            gone.add(m.id)
            report.deleted_for_space += 1
            report.moves.append(MemoryMove(m.id, "deleted", m.tier, None, "space", m.score))
        if len(expendable) < excess:
            report.notes.append(
                f"{excess - len(expendable)} memories over max_memories "
                f"({config.max_memories}) are pinned or have importance >= "
                f"{config.importance_threshold}; none of them was deleted"
            )

    remaining = [m for m in memories if m.id not in gone]
    capacities = config.capacities
    targets = tier_targets(len(remaining), config.scoring.target, capacities)
    fixed = {m.id for m in remaining if m.pinned or m.archived or m.id in archived}
    held = _count(tiers[m] for m in fixed)
    places: dict[str, int] = {tier: max(0, targets[tier] - held[tier]) for tier in TIERS}
    for tier in TIERS:
        if held[tier] > targets[tier]:
            report.notes.append(
                f"{held[tier]} pinned or archived memories keep the {tier} tier above its "
                f"target of {targets[tier]}: the optimizer does not move them (unpin with "
                "pjai memory update ID --unpin; an archived memory leaves cold when moved)"
            )
    ranked = [m for m in remaining if m.id not in fixed]
    for position, m in enumerate(ranked):
        target = _tier_at(position, places)
        if target == tiers[m.id]:
            continue
        promoted = TIERS.index(target) < TIERS.index(tiers[m.id])
        reason: TierChangeReason
        if m.id in importance_changed:
            reason = "importance_change"
        elif promoted:
            reason = "access_pattern" if m.recently_opened else "optimization"
        else:
            reason = "age_decay" if m.recency < 0.5 else "optimization"
        if promoted:
            report.promoted += 1
        else:
            report.demoted += 1
        events.append(
            MemoryTierChanged(
                memory_id=m.id,
                persona_id=persona.id,
                tier=target,
                reason=reason,
                score=round(m.score, 6),
            )
        )
        report.moves.append(MemoryMove(m.id, "moved", tiers[m.id], target, reason, m.score))
        tiers[m.id] = target
    report.tiers_after = _count(tiers[m.id] for m in remaining)
    if report.tiers_after.get("cold", 0) > capacities.cold:
        report.notes.append(
            f"the cold tier holds {report.tiers_after['cold']} memories, over its capacity "
            f"of {capacities.cold}: raise the capacity or lower max_memories"
        )
    report.events = len(events)
    return events, report


def privacy_rule(
    persona: Persona,
    created_at: datetime,
    restricted: bool,
    now: datetime,
    session_start: datetime | None,
) -> Literal["session", "restricted"] | None:
    """Which privacy rule deletes a memory of ``persona`` recorded at ``created_at``
    (tagged ``restricted`` or not) at ``now``, or ``None``."""
    off = not persona.privacy.memory_retention
    if off and session_start is not None and created_at < session_start:
        return "session"
    days = persona.memory.restricted_retention_days
    if days is not None and restricted and created_at < now - timedelta(days=days):
        return "restricted"
    return None


def session_start(backend: Backend, persona_id: str, now: datetime) -> datetime | None:
    """When the persona's current session began at ``now``: the start of its latest
    conversation that is not after ``now``, if any.

    A conversation dated ahead (a synced device whose clock runs ahead, or a start
    given) begins its session at its time, not before: else every current memory would
    count as an earlier session's and be deleted at once."""
    c = conversations.c
    rows = backend.query(
        select(func.max(c.started_at).label("start")).where(
            c.persona_id == persona_id, c.started_at <= now
        )
    )
    return as_datetime(rows[0].start) if rows else None


def optimize(
    backend: Backend,
    persona_id: str,
    *,
    now: datetime | None = None,
    importance_changed: Collection[str] = (),
    privacy_only: bool = False,
    free_space: bool = True,
) -> OptimizationReport:
    """Run the optimizer for one persona and commit what it decides, in one commit.

    Memories in ``importance_changed`` (whose importance was just set) that move get
    the reason ``importance_change``. ``privacy_only``: apply the privacy rules only.
    ``free_space=False``: delete nothing for space.
    """
    exact = now or utc_now()
    at = exact.replace(minute=0, second=0, microsecond=0)
    with _guard:
        lock = _runs[persona_id]
    with lock:  # one run per persona at a time in this process, whoever asks
        attempt = 1
        while True:
            persona = load_persona(backend, persona_id)
            if persona is None:
                raise ConfigError(f"no live persona {persona_id!r}")
            memories = scored_memories(backend, persona, at)
            start = (
                None
                if persona.privacy.memory_retention
                else session_start(backend, persona_id, exact)
            )
            events, report = plan(
                persona,
                memories,
                at,
                importance_changed,
                session_start=start,
                privacy_only=privacy_only,
                privacy_at=exact,
                free_space=free_space,
            )
            if not events:
                return report
            try:
                backend.commit(*events)
                return report
            except MaterializationError:
                # Another writer changed a memory between plan and commit; nothing of
                # this run was written, so plan again from the new state.
                if attempt == ATTEMPTS:
                    raise
                attempt += 1


def _tier_at(position: int, places: dict[str, int]) -> Tier:
    """The tier of the memory ranked ``position`` among those the optimizer places."""
    if position < places["hot"]:
        return "hot"
    if position < places["hot"] + places["warm"]:
        return "warm"
    return "cold"


def _count(tiers: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = dict.fromkeys(TIERS, 0)
    for tier in tiers:
        counts[tier] += 1
    return counts
