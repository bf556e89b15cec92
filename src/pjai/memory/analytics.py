"""Memory health and the figures a dashboard shows, all computed from the data.

Each figure is a query (a select every backend runs, with named parameters) that can
be run once with ``backend.query`` or kept current with ``backend.live``, and, where
the figure needs more than the rows, a pure function that turns the rows into it.

Health, per persona (or over all personas): tier counts against capacities,
fragmentation (the distance, 0-100, between the tier counts and the counts the
optimizer aims at, :func:`pjai.memory.scoring.tier_targets`: half the sum of the
absolute differences, in percent of the memories), an importance histogram in tenths,
the stale share (live memories neither recorded nor opened within their persona's
``stale_after_days``), and a score 0-100 with alerts:

    score = 100 - capacity penalty - fragmentation penalty - 30 * stale share
    capacity above 85 % of a tier: warning, -10; above 95 %: critical, -25 (worst tier)
    fragmentation above 40: warning, -10; above 60: critical, -20
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import (
    BindParameter,
    Integer,
    String,
    and_,
    bindparam,
    case,
    func,
    or_,
    select,
)
from sqlalchemy.sql import visitors

from pjai.errors import QueryError
from pjai.memory.backend import Backend
from pjai.memory.scoring import tier_targets
from pjai.schema.expressions import contains_text, count_if, has_tag, importance_decile
from pjai.schema.models import Persona
from pjai.schema.personas import ScoringConfig, TierCapacities, TierShares
from pjai.schema.tables import TIERS, memories, personas
from pjai.schema.types import AnySelect, utc_now
from pjai.sql.repositories import FREQUENT_ACCESSES, HIGH_IMPORTANCE
from pjai.store.query import Query

__all__ = [
    "DASHBOARD",
    "Alert",
    "Health",
    "capacity_level",
    "dashboard_query",
    "health",
    "health_from_rows",
    "health_query",
    "stale_limits",
]

STALE_AFTER_DAYS = ScoringConfig().stale_after_days
"""The default stale limit: a persona's own ``stale_after_days`` overrides it."""


@dataclass(frozen=True, slots=True)
class Alert:
    """Something about memory health that needs attention."""

    level: str
    message: str


@dataclass(slots=True)
class Health:
    """Memory health of one persona, or of all personas together."""

    memories: int
    tiers: dict[str, int]
    capacity_use: dict[str, float]
    fragmentation: float
    importance_histogram: list[int]
    stale_share: float
    score: float
    alerts: list[Alert] = field(default_factory=list)


def capacity_level(use: float) -> Literal["critical", "warning"] | None:
    """How a tier's capacity use (a share, 1 is full) counts for health: ``critical``
    above 95 %, ``warning`` above 85 %, else ``None``."""
    if use > 0.95:
        return "critical"
    if use > 0.85:
        return "warning"
    return None


def stale_limits(backend: Backend, persona_id: str | None = None) -> set[int]:
    """The stale limits in days (``stale_after_days``) of one live persona or of all:
    the limits :func:`health_query` counts stale memories by."""
    p = personas.c
    query = select(p.memory_scoring).where(p.deleted_at.is_(None))
    if persona_id is not None:
        query = query.where(p.id == persona_id)
    return {_stale_limit(row.memory_scoring) for row in backend.query(query)}


def _stale_limit(scoring: dict[str, Any] | None) -> int:
    return int((scoring or {}).get("stale_after_days", STALE_AFTER_DAYS))


def health_query(
    persona_id: str | None = None,
    *,
    stale_days: Iterable[int] = (),
    now: datetime | None = None,
) -> tuple[AnySelect, dict[str, Any]]:
    """The query behind :func:`health` (for a live query), with its parameters.

    Its rows are per persona, tier and importance decile; feed them to
    :func:`health_from_rows`. Stale memories are counted once per limit in
    ``stale_days`` (see :func:`stale_limits`) and the default limit, and each persona's
    own limit picks its count; a persona whose limit is not among them (it changed
    after the query was made) counts by the default.
    """
    now = now or utc_now()
    p, m = personas.c, memories.c
    decile = importance_decile(m.importance)
    touched = func.coalesce(m.last_accessed_at, m.created_at)
    stale_counts = []
    for days in sorted({STALE_AFTER_DAYS, *stale_days}):
        # Stale: neither recorded nor opened since ``before``.
        before = now - timedelta(days=days)
        stale = and_(m.created_at < before, touched < before)
        stale_counts.append(func.sum(case((stale, 1), else_=0)).label(f"stale_{days}"))
    query = (
        select(
            p.id.label("persona_id"),
            *(getattr(p, f"memory_capacity_{tier}").label(f"cap_{tier}") for tier in TIERS),
            p.memory_scoring.label("scoring"),
            m.tier.label("tier"),
            decile.label("decile"),
            # Counting a column the health index holds (not the id) keeps the query
            # on the index; tier is never NULL, but for a persona with no memories.
            func.count(m.tier).label("n"),
            *stale_counts,
        )
        .select_from(
            personas.outerjoin(memories, and_(m.persona_id == p.id, m.deleted_at.is_(None)))
        )
        .where(p.deleted_at.is_(None), *([p.id == persona_id] if persona_id is not None else []))
        .group_by(p.id, m.tier, decile)
    )
    return query, {}


def health_from_rows(rows: list[Any], target: TierShares | None = None) -> Health:
    """Health from the rows of :func:`health_query` (one persona's or many together).

    Each persona's tiers are measured against its own targets (its target shares, or
    ``target`` when given, within its capacities); over many personas, the targets
    add up.
    """
    tiers: dict[str, int] = dict.fromkeys(TIERS, 0)
    capacity: dict[str, int] = dict.fromkeys(TIERS, 0)
    histogram = [0] * 10
    stale = 0
    counts: dict[str, int] = {}
    limits: dict[str, TierCapacities] = {}
    shares: dict[str, TierShares] = {}
    for row in rows:
        if row.persona_id not in counts:
            counts[row.persona_id] = 0
            caps = {tier: getattr(row, f"cap_{tier}") for tier in TIERS}
            for tier in TIERS:
                capacity[tier] += caps[tier]
            limits[row.persona_id] = TierCapacities(**caps)
            wanted = (row.scoring or {}).get("target") or {}
            shares[row.persona_id] = target or (TierShares(**wanted) if wanted else TierShares())
        if row.tier is None or not row.n:
            continue
        counts[row.persona_id] += row.n
        tiers[row.tier] += row.n
        histogram[max(0, int(row.decile))] += row.n
        counted = getattr(row, f"stale_{_stale_limit(row.scoring)}", None)
        if counted is None:
            counted = getattr(row, f"stale_{STALE_AFTER_DAYS}")
        stale += counted or 0
    total = sum(tiers.values())
    use: dict[str, float] = {t: (tiers[t] / capacity[t] if capacity[t] else 0.0) for t in TIERS}
    aimed: dict[str, int] = dict.fromkeys(TIERS, 0)
    for persona_id, count in counts.items():
        for name, n in tier_targets(count, shares[persona_id], limits[persona_id]).items():
            aimed[name] += n
    distance = 50.0 * sum(abs(tiers[t] - aimed[t]) for t in TIERS) / total if total else 0.0
    # Rounded before the thresholds, so that a reported 60.0 is not "above 60".
    fragmentation = round(distance, 2)
    stale_share = stale / total if total else 0.0
    alerts: list[Alert] = []
    capacity_penalty = 0
    for tier in TIERS:
        level = capacity_level(use[tier])
        if level is not None:
            alerts.append(Alert(level, f"{tier} tier at {use[tier]:.0%} of capacity"))
            capacity_penalty = max(capacity_penalty, 25 if level == "critical" else 10)
    fragmentation_penalty = 0
    if fragmentation > 60:
        alerts.append(Alert("critical", f"fragmentation {fragmentation:.0f} (above 60)"))
        fragmentation_penalty = 20
    elif fragmentation > 40:
        alerts.append(Alert("warning", f"fragmentation {fragmentation:.0f} (above 40)"))
        fragmentation_penalty = 10
    score = max(0.0, 100.0 - capacity_penalty - fragmentation_penalty - 30.0 * stale_share)
    return Health(
        total,
        tiers,
        use,
        fragmentation,
        histogram,
        round(stale_share, 4),
        round(score, 1),
        alerts,
    )


def health(
    backend: Backend, persona: Persona | None = None, *, now: datetime | None = None
) -> Health:
    """Memory health of ``persona``, or over every persona."""
    limits = {persona.memory.scoring.stale_after_days} if persona else stale_limits(backend)
    sql, params = health_query(persona.id if persona else None, stale_days=limits, now=now)
    target = persona.memory.scoring.target if persona else None  # else each its own
    return health_from_rows(backend.query(sql, params), target)


def _dashboard() -> dict[str, Query]:
    p, m = personas.c, memories.c
    persona = bindparam("persona", type_=String)
    limit = bindparam("limit", type_=Integer)
    live_personas = select(personas).where(p.deleted_at.is_(None))
    live_memories = select(memories).where(m.deleted_at.is_(None))
    of_persona = live_memories.where(m.persona_id == persona)
    any_persona = or_(persona.is_(None), m.persona_id == persona)
    text = bindparam("text", type_=String)
    return {
        "active_persona": live_personas.where(p.is_active),
        "personas": live_personas.order_by(p.name, p.id),
        # Ties (one commit changes many personas; namesakes) by id, as everywhere: the
        # backends keep rows in different orders.
        "recent_personas": live_personas.order_by(p.updated_at.desc(), p.id).limit(limit),
        "persona_search": live_personas.where(
            or_(contains_text(p.name, text), contains_text(p.description, text))
        ).order_by(p.name, p.id),
        "memories_by_persona": of_persona.order_by(m.importance.desc(), m.id).limit(limit),
        "memories_by_tier": of_persona.where(m.tier == bindparam("tier"))
        .order_by(m.importance.desc(), m.id)
        .limit(limit),
        "memories_by_type": of_persona.where(m.type == bindparam("type"))
        .order_by(m.occurred_at.desc(), m.id)
        .limit(limit),
        "memories_by_importance": of_persona.where(
            m.importance.between(bindparam("low"), bindparam("high"))
        )
        .order_by(m.importance.desc(), m.id)
        .limit(limit),
        # A window, as the timeline's: from start up to, not including, end.
        "memories_by_date": of_persona.where(
            m.occurred_at >= bindparam("start"), m.occurred_at < bindparam("end")
        )
        .order_by(m.occurred_at, m.id)
        .limit(limit),
        "memories_by_tag": of_persona.where(has_tag(m.tags, bindparam("tag", type_=String)))
        .order_by(m.importance.desc(), m.id)
        .limit(limit),
        "memory_statistics": select(
            func.count().label("total"),
            func.avg(m.importance).label("average_importance"),
            count_if(m.importance >= HIGH_IMPORTANCE).label("high_importance"),
            count_if(m.access_count >= FREQUENT_ACCESSES).label("frequently_accessed"),
            count_if(m.last_accessed_at >= bindparam("day_ago")).label("accessed_last_24h"),
        ).where(m.deleted_at.is_(None), any_persona),
        "tier_distribution": select(m.tier, func.count().label("n"))
        .where(m.deleted_at.is_(None), any_persona)
        .group_by(m.tier)
        .order_by(m.tier),
        "type_distribution": select(m.type, func.count().label("n"))
        .where(m.deleted_at.is_(None), any_persona)
        .group_by(m.type)
        .order_by(func.count().desc(), m.type),
        # The reactive store's event log: with the store only.
        "recent_activity": (
            "SELECT global_seq, name, at, json_extract(args, '$.persona_id') AS persona_id "
            "FROM pjai_eventlog ORDER BY global_seq DESC LIMIT :limit"
        ),
    }


DASHBOARD: dict[str, Query] = _dashboard()
"""The dashboard's queries, by name: selects every backend runs, but ``recent_activity``,
which reads the reactive store's event log."""


def _parameters(query: Query) -> frozenset[str]:
    if isinstance(query, str):
        return frozenset(re.findall(r":(\w+)", query))
    return frozenset(
        e.key
        for e in visitors.iterate(query)
        if isinstance(e, BindParameter) and not e.unique  # named, not a literal's
    )


_PARAMETERS = {name: _parameters(query) for name, query in DASHBOARD.items()}


def dashboard_query(name: str, **params: Any) -> tuple[Query, dict[str, Any]]:
    """A dashboard query with its parameters (``limit`` 50 and ``day_ago`` filled in)."""
    try:
        query = DASHBOARD[name]
    except KeyError:
        raise QueryError(f"no dashboard query {name!r}; there are {', '.join(DASHBOARD)}") from None
    defaults: dict[str, Any] = {
        "limit": 50,
        "persona": None,
        "day_ago": utc_now() - timedelta(days=1),
    }
    used = _PARAMETERS[name]
    return query, {k: v for k, v in {**defaults, **params}.items() if k in used}
