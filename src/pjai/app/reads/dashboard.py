"""What the dashboard shows: live queries for its counts, memory health, the memory
timeline and the store's event rate, and plain reads for the health of the store and
the SQL shards and for the sync status.

The queries are those of :mod:`pjai.memory.analytics` and :mod:`pjai.memory.timeline`
kept current with ``manager.live`` (they follow the store switch); the event rate reads
the store's own event log, with the store only. The functions named after a figure
turn the rows into it. Health and sync status are not table data: a view polls them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Select, func, select

from pjai.app.datadir import DataDir
from pjai.app.reads.store_only import store_of
from pjai.app.syncstatus import SyncReport, sync_status
from pjai.errors import QueryError
from pjai.hybrid import HybridDatabaseManager, spread
from pjai.hybrid.health import Health as SystemHealth
from pjai.memory.analytics import (
    Health,
    dashboard_query,
    health_from_rows,
    health_query,
    stale_limits,
)
from pjai.memory.timeline import timeline_from_rows, timeline_query
from pjai.schema.expressions import count_if
from pjai.schema.tables import TIERS, memories, personas
from pjai.schema.types import to_iso, utc_now
from pjai.store import LiveQuery, Row

__all__ = [
    "EVENT_WINDOW_S",
    "STORE_OFF",
    "EventRate",
    "Health",
    "MemoryFigures",
    "PersonaCounts",
    "SystemHealth",
    "TimelinePoint",
    "event_rate",
    "event_seconds",
    "health",
    "memory_figures",
    "memory_health",
    "memory_statistics",
    "memory_timeline",
    "persona_counts",
    "personas_counted",
    "sync_report",
    "tier_counts",
    "tier_distribution",
    "timeline_points",
]

EVENT_WINDOW_S = 60
"""The event rate covers this many seconds up to now."""

_EVENT_SCAN = 5_000
"""The event rate reads at most the newest this many events of the log, so that the
query re-run after every commit stays cheap; a busier window is marked as partial."""

STORE_OFF = "the store is off: no event rate (only the store's event log times each event)"

_WEEKS_FROM_DAYS = 120
"""A timeline spanning more days than this is drawn in ISO weeks."""


@dataclass(frozen=True, slots=True)
class PersonaCounts:
    """How many personas there are: live ones, and all ever made (deleted ones too)."""

    live: int
    made: int


def personas_counted(manager: HybridDatabaseManager) -> LiveQuery:
    """Live and all personas, counted (read with :func:`persona_counts`)."""
    c = personas.c
    query = select(
        count_if(c.deleted_at.is_(None)).label("live"), func.count().label("made")
    ).select_from(personas)
    return manager.live(spread(query, counts_by=()))


def persona_counts(rows: list[Row]) -> PersonaCounts:
    """The row of :func:`personas_counted` as a value."""
    row = rows[0] if rows else None
    return PersonaCounts(int(row.live or 0), int(row.made or 0)) if row else PersonaCounts(0, 0)


def tier_distribution(manager: HybridDatabaseManager, persona_id: str | None) -> LiveQuery:
    """Live memories per tier, of one persona or (``None``) of all (read with
    :func:`tier_counts`)."""
    query, params = dashboard_query("tier_distribution", persona=persona_id)
    assert isinstance(query, Select)
    tier = memories.c.tier
    return manager.live(spread(query, order_by=(tier,), counts_by=(tier,)), params)


def tier_counts(rows: list[Row]) -> dict[str, int]:
    """Memories per tier, every tier present, hottest first."""
    found = {row.tier: int(row.n) for row in rows}
    return {tier: found.get(tier, 0) for tier in TIERS}


@dataclass(frozen=True, slots=True)
class MemoryFigures:
    """A persona's live memories in figures."""

    total: int
    average_importance: float | None
    high_importance: int
    frequently_accessed: int
    accessed_last_24h: int


def memory_statistics(manager: HybridDatabaseManager, persona_id: str | None) -> LiveQuery:
    """Counts and average importance of live memories, of one persona or (``None``) of
    all (read with :func:`memory_figures`). "The last 24 hours" end when it is made."""
    query, params = dashboard_query("memory_statistics", persona=persona_id)
    return manager.live(query, params)


def memory_figures(rows: list[Row]) -> MemoryFigures:
    """The row of :func:`memory_statistics` as a value."""
    if not rows:
        return MemoryFigures(0, None, 0, 0, 0)
    row = rows[0]
    average = row.average_importance
    return MemoryFigures(
        int(row.total or 0),
        float(average) if average is not None else None,
        int(row.high_importance or 0),
        int(row.frequently_accessed or 0),
        int(row.accessed_last_24h or 0),
    )


def memory_health(manager: HybridDatabaseManager, persona_id: str | None) -> LiveQuery:
    """The rows of memory health (read with :func:`health`), of one persona or of all,
    each with its own stale limit as it is when the query is made."""
    limits = stale_limits(manager, persona_id)
    if persona_id is not None and not limits:
        raise QueryError(f"no persona {persona_id!r}")
    query, params = health_query(persona_id, stale_days=limits)
    return manager.live(query, params)


def health(rows: list[Row]) -> Health:
    """Memory health from the rows of :func:`memory_health`: capacity use, fragmentation,
    importance histogram, stale share, score and alerts."""
    return health_from_rows(rows)


@dataclass(frozen=True, slots=True)
class TimelinePoint:
    """Memories that happened in one stretch (a day or an ISO week, from ``start``),
    and the running total up to its end."""

    start: date
    added: int
    total: int


def memory_timeline(manager: HybridDatabaseManager, persona_id: str) -> LiveQuery:
    """A persona's live memories per day they happened (read with :func:`timeline_points`)."""
    return manager.live(timeline_query(persona_id, "day"))


def timeline_points(rows: list[Row]) -> list[TimelinePoint]:
    """The days of :func:`memory_timeline` with their running total, merged into ISO
    weeks when they span more than about four months."""
    days = timeline_from_rows(rows, "day")
    if not days:
        return []
    first, last = date.fromisoformat(days[0].key), date.fromisoformat(days[-1].key)
    weekly = (last - first).days > _WEEKS_FROM_DAYS
    buckets = timeline_from_rows(rows, "week") if weekly else days
    points, total = [], 0
    for bucket in buckets:
        total += bucket.memories
        if weekly:
            year, week = bucket.key.split("-W")
            start = date.fromisocalendar(int(year), int(week), 1)
        else:
            start = date.fromisoformat(bucket.key)
        points.append(TimelinePoint(start, bucket.memories, total))
    return points


def event_seconds(manager: HybridDatabaseManager, *, now: datetime | None = None) -> LiveQuery:
    """Events of the store's log per second (UTC, ``YYYY-MM-DDTHH:MM:SS``), from the
    newest events back to the start of the window (read with :func:`event_rate`).

    Only the store logs each event with its time, so this live query runs on the store
    itself and, unlike those of ``manager.live``, does not move to SQL when the store
    is switched off: it ends with the store, and a view makes a new one when the store
    is back. With the store off this raises :class:`~pjai.errors.QueryError` saying so.
    It re-runs after this process's commits and, once the store has looked
    (:meth:`~pjai.hybrid.HybridDatabaseManager.refresh`), after other processes'.
    """
    query, params = _event_seconds(now)
    return store_of(manager, STORE_OFF).live(query, params)


def _event_seconds(now: datetime | None) -> tuple[str, dict[str, object]]:
    # A live query's parameters are fixed: the lower time bound only prunes, and the
    # window is cut again against the clock by :func:`event_rate`. The bound on
    # positions keeps each re-run to the newest events.
    since = (now or utc_now()) - timedelta(seconds=EVENT_WINDOW_S)
    query = (
        "SELECT substr(at, 1, 19) AS second, count(*) AS n FROM pjai_eventlog "
        "WHERE global_seq > (SELECT coalesce(max(global_seq), 0) FROM pjai_eventlog) - :scan "
        "AND at >= :since GROUP BY second ORDER BY second"
    )
    return query, {"scan": _EVENT_SCAN, "since": to_iso(since)}


@dataclass(frozen=True, slots=True)
class EventRate:
    """Events per second over the window that ends now.

    ``per_second`` holds one count per second, oldest first, ending with the current
    second (still running). ``recent`` is the average over the last five full seconds.
    ``partial``: the window held more events than the rate reads, so the counts of its
    oldest seconds are too low.
    """

    seconds: list[datetime]
    per_second: list[int]
    recent: float
    peak: int
    partial: bool


def event_rate(rows: list[Row], now: datetime | None = None) -> EventRate:
    """The rate from the rows of :func:`event_seconds`, for the window ending ``now``."""
    now = (now or utc_now()).replace(microsecond=0)
    seconds = [now - timedelta(seconds=back) for back in range(EVENT_WINDOW_S - 1, -1, -1)]
    counts = {row.second: int(row.n) for row in rows}
    per_second = [counts.get(to_iso(second)[:19], 0) for second in seconds]
    scanned = sum(counts.values())
    oldest = min(counts, default=None)
    partial = scanned >= _EVENT_SCAN and oldest is not None and oldest > to_iso(seconds[0])[:19]
    return EventRate(
        seconds,
        per_second,
        round(sum(per_second[-6:-1]) / 5, 1),
        max(per_second),
        partial,
    )


def sync_report(data_dir: DataDir, manager: HybridDatabaseManager) -> SyncReport | None:
    """The directory's sync status, or ``None`` when it does not sync (standalone)."""
    if not manager.syncing:
        return None
    return sync_status(data_dir)
