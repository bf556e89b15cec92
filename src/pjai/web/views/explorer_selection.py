"""What the memory explorer shows: the filter and the search, as one value.

A :class:`Selection` is what the user picked (tiers, types, tags, importance, a time
range, hours of the day, deleted memories or not, search text and method); it becomes
a :class:`~pjai.schema.selection.MemoryFilter` for the reads and a bookmark's fields for
saving, and comes back from a bookmark or a preset.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any

from pjai.app.times import typed_time
from pjai.memory.search import Method
from pjai.schema.fields import Tier
from pjai.schema.selection import MemoryFilter, bookmark_filter

__all__ = ["Selection", "format_time", "parse_time"]

_LAST_INSTANT = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Selection:
    """The memories the explorer shows: the filter, and the search when ``text`` is set.

    Times are UTC and both ends of the range are included, as in a bookmark.
    """

    tiers: tuple[Tier, ...] = ()
    types: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    importance: tuple[float, float] = (0.0, 1.0)
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None
    hours: tuple[int, int] | None = None
    include_deleted: bool = False
    text: str = ""
    method: Method = "keyword"

    def where(self, persona_id: str, *, timed: bool = True) -> MemoryFilter:
        """The filter for the persona's memories (without the time range unless
        ``timed``: the timeline shows every time)."""
        low, high = self.importance
        return MemoryFilter(
            persona_id=persona_id,
            tiers=self.tiers or None,
            types=self.types or None,
            tags=self.tags or None,
            importance_min=low if low > 0 else None,
            importance_max=high if high < 1 else None,
            occurred_from=self.occurred_from if timed else None,
            occurred_to=self.occurred_to if timed else None,
            hours=self.hours,
            include_deleted=self.include_deleted,
        )

    def bookmark(self) -> dict[str, Any]:
        """The keyword arguments of :meth:`pjai.app.Bookmarks.create` that save it."""
        low, high = self.importance
        return {
            "time_from": self.occurred_from,
            "time_to": self.occurred_to,
            "tiers": list(self.tiers) or None,
            "types": list(self.types) or None,
            "tags": list(self.tags) or None,
            "importance_min": low if low > 0 else None,
            "importance_max": high if high < 1 else None,
            "hours": list(self.hours) if self.hours else None,
        }

    @classmethod
    def of_bookmark(cls, row: Any) -> Selection:
        """The selection a bookmark's row shows."""
        where = bookmark_filter(row.persona_id, row.time_from, row.time_to, row.filters)
        return cls(
            tiers=tuple(where.tiers or ()),
            types=tuple(where.types or ()),
            tags=tuple(where.tags or ()),
            importance=(
                0.0 if where.importance_min is None else where.importance_min,
                1.0 if where.importance_max is None else where.importance_max,
            ),
            occurred_from=where.occurred_from,
            occurred_to=where.occurred_to,
            hours=where.hours,
        )

    def timed(self, start: datetime | None, end: datetime | None) -> Selection:
        """The same selection over ``start``..``end`` (both included)."""
        return replace(self, occurred_from=start, occurred_to=end)

    @property
    def searching(self) -> bool:
        """Whether a search decides which memories show."""
        return bool(self.text.strip())


def parse_time(text: str, *, end: bool = False) -> datetime | None:
    """A time the user typed (``2026-01-31``, ``2026-01-31 14:30`` or to the second or
    microsecond, UTC unless it gives an offset), read as the command line reads it
    (:func:`pjai.app.times.typed_time`: with ``end``, the whole day, hour, minute or
    second it names). Empty text is no time."""
    if not text.strip():
        return None
    return typed_time(text, end=end)


def format_time(value: datetime | None, *, end: bool = False) -> str:
    """A time as :func:`parse_time` reads it back to the same instant: a bare date where
    it is the day's first instant (last, with ``end``), else to the minute, or to the
    second or microsecond where it has them."""
    if value is None:
        return ""
    value = value.astimezone(UTC)
    edge = value + _LAST_INSTANT if end else value
    if edge.time() == time():
        return value.date().isoformat()
    if edge.second == 0 and edge.microsecond == 0:
        unit = "minutes"
    else:
        unit = "seconds" if edge.microsecond == 0 else "microseconds"
    # isoformat writes every year with four digits, as parse_time reads it (strftime's
    # %Y writes the year 999 as "999").
    shown = value.replace(tzinfo=None).isoformat(" ", timespec=unit)
    if unit == "microseconds":  # as short as reads back exactly: 14:30:45.0, 14:30:45.12
        whole, fraction = shown.split(".")
        shown = f"{whole}.{fraction.rstrip('0') or '0'}"
    return shown
