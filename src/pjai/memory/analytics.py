"""Memory health and the figures a dashboard shows, all computed from the data.

Each figure is a query (SQL text with named parameters) that can be run once with
``backend.query`` or kept current with ``backend.live``, and, where the figure needs
more than the rows, a pure function that turns the rows into it.

Health, per persona (or over all personas): tier counts against capacities,
fragmentation (the distance, 0-100, between the tier shares and the persona's target
shares: half the sum of the absolute differences, in percent), an importance histogram
in tenths, the stale share (live memories neither recorded nor opened within
``stale_after_days``), and a score 0-100 with alerts:

    score = 100 - capacity penalty - fragmentation penalty - 30 * stale share
    capacity above 85 % of a tier: warning, -10; above 95 %: critical, -25 (worst tier)
    fragmentation above 40: warning, -10; above 60: critical, -20
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pjai.memory.backend import Backend
from pjai.schema.models import Persona
from pjai.schema.personas import TierShares
from pjai.schema.types import utc_now

__all__ = [
    "DASHBOARD",
    "Alert",
    "Health",
    "dashboard_query",
    "health",
    "health_from_rows",
    "health_query",
]

TIERS = ("hot", "warm", "cold")

HEALTH_SQL = """
SELECT p.id AS persona_id, p.memory_capacity_hot AS cap_hot,
       p.memory_capacity_warm AS cap_warm, p.memory_capacity_cold AS cap_cold,
       p.memory_scoring AS scoring,
       m.tier AS tier, min(CAST(m.importance * 10 AS INTEGER), 9) AS decile,
       count(m.id) AS n,
       sum(CASE WHEN max(m.created_at, coalesce(m.last_accessed_at, m.created_at)) < :stale_before
           THEN 1 ELSE 0 END) AS stale
FROM personas AS p LEFT JOIN memories AS m
  ON m.persona_id = p.id AND m.deleted_at IS NULL
WHERE p.deleted_at IS NULL AND (:persona IS NULL OR p.id = :persona)
GROUP BY p.id, m.tier, decile
"""
"""Rows per persona, tier and importance decile; feed them to :func:`health_from_rows`."""


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


def health_query(
    persona_id: str | None = None, *, stale_days: int = 90, now: datetime | None = None
) -> tuple[str, dict[str, Any]]:
    """The query behind :func:`health` (for a live query), with its parameters."""
    before = (now or utc_now()) - timedelta(days=stale_days)
    return HEALTH_SQL, {"persona": persona_id, "stale_before": before}


def health_from_rows(rows: list[Any], target: TierShares | None = None) -> Health:
    """Health from the rows of :data:`HEALTH_SQL` (one persona's or many together)."""
    tiers = dict.fromkeys(TIERS, 0)
    capacity = dict.fromkeys(TIERS, 0)
    histogram = [0] * 10
    stale = 0
    seen: set[str] = set()
    shares = target
    for row in rows:
        if row.persona_id not in seen:
            seen.add(row.persona_id)
            capacity["hot"] += row.cap_hot
            capacity["warm"] += row.cap_warm
            capacity["cold"] += row.cap_cold
            if shares is None:
                wanted = (row.scoring or {}).get("target") or {}
                shares = TierShares(**wanted) if wanted else TierShares()
        if row.tier is None or not row.n:
            continue
        tiers[row.tier] += row.n
        histogram[max(0, int(row.decile))] += row.n
        stale += row.stale or 0
    shares = shares or TierShares()
    total = sum(tiers.values())
    use = {t: (tiers[t] / capacity[t] if capacity[t] else 0.0) for t in TIERS}
    wanted = {"hot": shares.hot, "warm": shares.warm, "cold": shares.cold}
    distance = 50.0 * sum(abs(tiers[t] / total - wanted[t]) for t in TIERS) if total else 0.0
    # Rounded before the thresholds, so that a reported 60.0 is not "above 60".
    fragmentation = round(distance, 2)
    stale_share = stale / total if total else 0.0
    alerts: list[Alert] = []
    capacity_penalty = 0
    for tier in TIERS:
        if use[tier] > 0.95:
            alerts.append(Alert("critical", f"{tier} tier at {use[tier]:.0%} of capacity"))
            capacity_penalty = max(capacity_penalty, 25)
        elif use[tier] > 0.85:
            alerts.append(Alert("warning", f"{tier} tier at {use[tier]:.0%} of capacity"))
            capacity_penalty = max(capacity_penalty, 10)
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
    stale_days = persona.memory.scoring.stale_after_days if persona else 90
    sql, params = health_query(persona.id if persona else None, stale_days=stale_days, now=now)
    target = persona.memory.scoring.target if persona else TierShares()
    return health_from_rows(backend.query(sql, params), target)


DASHBOARD: dict[str, str] = {
    "active_persona": "SELECT * FROM personas WHERE is_active AND deleted_at IS NULL",
    "personas": "SELECT * FROM personas WHERE deleted_at IS NULL ORDER BY name, id",
    "recent_personas": (
        "SELECT * FROM personas WHERE deleted_at IS NULL ORDER BY updated_at DESC LIMIT :limit"
    ),
    # instr, not LIKE: the search text matches literally, % and _ too.
    "persona_search": (
        "SELECT * FROM personas WHERE deleted_at IS NULL "
        "AND (instr(lower(name), lower(:text)) OR instr(lower(description), lower(:text))) "
        "ORDER BY name"
    ),
    "memories_by_persona": (
        "SELECT * FROM memories WHERE persona_id = :persona AND deleted_at IS NULL "
        "ORDER BY importance DESC, id LIMIT :limit"
    ),
    "memories_by_tier": (
        "SELECT * FROM memories WHERE persona_id = :persona AND tier = :tier "
        "AND deleted_at IS NULL ORDER BY importance DESC, id LIMIT :limit"
    ),
    "memories_by_type": (
        "SELECT * FROM memories WHERE persona_id = :persona AND type = :type "
        "AND deleted_at IS NULL ORDER BY occurred_at DESC, id LIMIT :limit"
    ),
    "memories_by_importance": (
        "SELECT * FROM memories WHERE persona_id = :persona AND importance BETWEEN :low AND :high "
        "AND deleted_at IS NULL ORDER BY importance DESC, id LIMIT :limit"
    ),
    "memories_by_date": (
        "SELECT * FROM memories WHERE persona_id = :persona AND occurred_at >= :start "
        "AND occurred_at < :end AND deleted_at IS NULL ORDER BY occurred_at, id LIMIT :limit"
    ),
    "memories_by_tag": (
        "SELECT * FROM memories WHERE persona_id = :persona AND deleted_at IS NULL "
        "AND EXISTS (SELECT 1 FROM json_each(memories.tags) WHERE value = :tag) "
        "ORDER BY importance DESC, id LIMIT :limit"
    ),
    "memory_statistics": (
        "SELECT count(*) AS total, avg(importance) AS average_importance, "
        "coalesce(sum(importance >= 0.8), 0) AS high_importance, "
        "coalesce(sum(access_count >= 5), 0) AS frequently_accessed, "
        "coalesce(sum(last_accessed_at >= :day_ago), 0) AS accessed_last_24h "
        "FROM memories WHERE deleted_at IS NULL AND (:persona IS NULL OR persona_id = :persona)"
    ),
    "tier_distribution": (
        "SELECT tier, count(*) AS n FROM memories WHERE deleted_at IS NULL "
        "AND (:persona IS NULL OR persona_id = :persona) GROUP BY tier ORDER BY tier"
    ),
    "type_distribution": (
        "SELECT type, count(*) AS n FROM memories WHERE deleted_at IS NULL "
        "AND (:persona IS NULL OR persona_id = :persona) GROUP BY type ORDER BY n DESC, type"
    ),
    "recent_activity": (
        "SELECT global_seq, name, at, json_extract(args, '$.persona_id') AS persona_id "
        "FROM pjai_eventlog ORDER BY global_seq DESC LIMIT :limit"
    ),
}
"""The dashboard's queries (SQLite, on the reactive store), by name."""


def dashboard_query(name: str, **params: Any) -> tuple[str, dict[str, Any]]:
    """A dashboard query with its parameters (``limit`` 50 and ``day_ago`` filled in)."""
    try:
        sql = DASHBOARD[name]
    except KeyError:
        from pjai.errors import QueryError

        raise QueryError(f"no dashboard query {name!r}; there are {', '.join(DASHBOARD)}") from None
    defaults: dict[str, Any] = {
        "limit": 50,
        "persona": None,
        "day_ago": utc_now() - timedelta(days=1),
    }
    return sql, {k: v for k, v in {**defaults, **params}.items() if f":{k}" in sql}
