"""The timeline: a persona's memories bucketed by when they happened, and bookmarks.

Buckets are hours, days, ISO 8601 weeks or months of ``occurred_at`` (UTC), each with
its memory count and importance statistics. A week runs Monday to Sunday and is keyed by
its ISO year and week number (``2025-W01`` starts on Monday 30 December 2024). A bookmark
names a time range and filters; the presets make the usual ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from pjai.errors import QueryError
from pjai.memory.backend import Backend
from pjai.schema import BookmarkCreated, BookmarkFilters, new_id
from pjai.schema.types import from_iso, utc_now

__all__ = [
    "PRESETS",
    "Bucket",
    "Unit",
    "bookmark_memories",
    "bookmarks",
    "get_bookmark",
    "preset",
    "timeline",
]

Unit = Literal["hour", "day", "week", "month"]

_FORMATS: dict[str, str] = {
    "hour": "%Y-%m-%dT%H:00",
    "day": "%Y-%m-%d",
    "week": "%Y-%m-%d",  # days, merged into ISO weeks here: SQLite's %G-W%V needs 3.46
    "month": "%Y-%m",
}


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


def timeline(
    backend: Backend,
    persona_id: str,
    unit: Unit = "day",
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[Bucket]:
    """Counts and importance statistics per ``unit`` between ``start`` and ``end``."""
    if unit not in _FORMATS:
        raise QueryError(f"timeline unit {unit!r}: use hour, day, week or month")
    sql = (
        f"SELECT strftime('{_FORMATS[unit]}', occurred_at) AS bucket, count(*) AS n, "
        "sum(importance) AS total, min(importance) AS low, max(importance) AS high, "
        "min(occurred_at) AS first, max(occurred_at) AS last "
        "FROM memories WHERE persona_id = :persona AND deleted_at IS NULL "
        "AND (:start IS NULL OR occurred_at >= :start) AND (:end IS NULL OR occurred_at < :end) "
        "GROUP BY bucket ORDER BY bucket"
    )
    groups: dict[str, list[Any]] = {}
    for r in backend.query(sql, {"persona": persona_id, "start": start, "end": end}):
        key = r.bucket
        if unit == "week":
            year, week, _ = date.fromisoformat(r.bucket).isocalendar()
            key = f"{year}-W{week:02d}"
        groups.setdefault(key, []).append(r)
    buckets = []
    for key, rows in groups.items():
        n = sum(r.n for r in rows)
        buckets.append(
            Bucket(
                key,
                n,
                round(sum(r.total for r in rows) / n, 4),
                min(r.low for r in rows),
                max(r.high for r in rows),
                min(_time(r.first) for r in rows),
                max(_time(r.last) for r in rows),
            )
        )
    return buckets


def _time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else from_iso(value)


def _day(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


PRESETS = ("today", "this_week", "working_hours", "hot_memories")


def preset(name: str, persona_id: str, *, now: datetime | None = None) -> BookmarkCreated:
    """A bookmark from the presets: today, this week, working hours, hot memories."""
    now = now or utc_now()
    bookmark_id = new_id()
    if name == "today":
        start = _day(now)
        return BookmarkCreated(
            bookmark_id=bookmark_id,
            persona_id=persona_id,
            name="Today",
            time_from=start,
            time_to=start + timedelta(days=1),
            colour="#2e86de",
        )
    if name == "this_week":
        monday = _day(now) - timedelta(days=now.weekday())
        return BookmarkCreated(
            bookmark_id=bookmark_id,
            persona_id=persona_id,
            name="This week",
            time_from=monday,
            time_to=monday + timedelta(days=7),
            colour="#10ac84",
        )
    if name == "working_hours":
        return BookmarkCreated(
            bookmark_id=bookmark_id,
            persona_id=persona_id,
            name="Working hours",
            description="09:00-17:00 UTC",
            filters=BookmarkFilters(hours=[9, 17]),
            colour="#ee5253",
        )
    if name == "hot_memories":
        return BookmarkCreated(
            bookmark_id=bookmark_id,
            persona_id=persona_id,
            name="Hot memories",
            filters=BookmarkFilters(tiers=["hot"]),
            colour="#ff9f43",
        )
    raise QueryError(f"no bookmark preset {name!r}; presets are {', '.join(PRESETS)}")


def bookmarks(backend: Backend, persona_id: str) -> list[Any]:
    """A persona's live bookmarks by name."""
    return backend.query(
        "SELECT * FROM bookmarks WHERE persona_id = :persona AND deleted_at IS NULL "
        "ORDER BY name, id",
        {"persona": persona_id},
    )


def get_bookmark(backend: Backend, bookmark_id: str) -> Any:
    """A live bookmark's row, or :class:`QueryError`."""
    rows = backend.query(
        "SELECT * FROM bookmarks WHERE id = :id AND deleted_at IS NULL", {"id": bookmark_id}
    )
    if not rows:
        raise QueryError(f"no bookmark {bookmark_id!r}")
    return rows[0]


def bookmark_memories(backend: Backend, bookmark_id: str, *, limit: int = 200) -> list[Any]:
    """The live memories a bookmark shows, most recent first."""
    mark = get_bookmark(backend, bookmark_id)
    filters = mark.filters or {}
    clauses = ["persona_id = :persona", "deleted_at IS NULL"]
    params: dict[str, Any] = {"persona": mark.persona_id, "limit": limit}
    if mark.time_from is not None:
        clauses.append("occurred_at >= :time_from")
        params["time_from"] = mark.time_from
    if mark.time_to is not None:
        clauses.append("occurred_at < :time_to")
        params["time_to"] = mark.time_to
    for key, column in (("tiers", "tier"), ("types", "type")):
        values = filters.get(key) or []
        if values:
            names = [f":{key}{i}" for i in range(len(values))]
            params.update({f"{key}{i}": v for i, v in enumerate(values)})
            clauses.append(f"{column} IN ({', '.join(names)})")
    for i, tag in enumerate(filters.get("tags") or []):
        params[f"tag{i}"] = tag
        clauses.append(f"EXISTS (SELECT 1 FROM json_each(memories.tags) WHERE value = :tag{i})")
    if filters.get("importance_min") is not None:
        params["importance_min"] = filters["importance_min"]
        clauses.append("importance >= :importance_min")
    if filters.get("importance_max") is not None:
        params["importance_max"] = filters["importance_max"]
        clauses.append("importance <= :importance_max")
    hours = filters.get("hours")
    if hours:
        params["hour_from"], params["hour_to"] = hours
        clauses.append("CAST(strftime('%H', occurred_at) AS INTEGER) >= :hour_from")
        clauses.append("CAST(strftime('%H', occurred_at) AS INTEGER) < :hour_to")
    where = " AND ".join(clauses)
    sql = f"SELECT * FROM memories WHERE {where} ORDER BY occurred_at DESC, id LIMIT :limit"
    return backend.query(sql, params)
