"""Bookmark events: a named view of a persona's timeline (time range and filters)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType, field

from pjai.errors import EventValidationError
from pjai.schema.event import Context, Event
from pjai.schema.fields import Colour, Id, MemoryType, Name, Tag, Tier, UnitInterval, UtcDatetime
from pjai.schema.ops import Insert, Missing, Op, Update
from pjai.schema.personas import require_live_persona
from pjai.schema.updates import set_fields, soft_deleted, stamped

__all__ = [
    "BookmarkCreated",
    "BookmarkDeleted",
    "BookmarkFilters",
    "BookmarkUpdated",
    "check_time_range",
]

Hour = Annotated[int, Meta(ge=0, le=24)]


class BookmarkFilters(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False):
    """Which memories a bookmark shows; empty means no restriction.

    ``hours`` keeps memories that occurred from ``hours[0]`` up to ``hours[1]`` o'clock
    (UTC), e.g. ``[9, 17]`` for working hours.
    """

    tiers: list[Tier] = field(default_factory=list)
    types: list[MemoryType] = field(default_factory=list)
    tags: list[Tag] = field(default_factory=list)
    importance_min: UnitInterval | None = None
    importance_max: UnitInterval | None = None
    hours: Annotated[list[Hour], Meta(min_length=2, max_length=2)] | None = None


def check_time_range(event: str, time_from: Any, time_to: Any) -> None:
    """Refuse a range whose start is after its end (a bookmark's ``time_from``)."""
    if time_from is not None and time_to is not None and time_from > time_to:
        reason = "must not be after the end of the range"
        raise EventValidationError(event, reason, field="time_from")


def _check_filters(event: str, filters: BookmarkFilters) -> None:
    low, high = filters.importance_min, filters.importance_max
    if low is not None and high is not None and low > high:
        reason = f"must not be above importance_max, got {low} > {high}"
        raise EventValidationError(event, reason, field="filters.importance_min")
    if filters.hours is not None and filters.hours[0] >= filters.hours[1]:
        reason = f"must be [from, to) with from < to within a day, got {filters.hours}"
        raise EventValidationError(event, reason, field="filters.hours")


class BookmarkCreated(Event, frozen=True, kw_only=True):
    """A bookmark on a persona's timeline was made."""

    NAME = "v1.BookmarkCreated"
    SENSITIVE = ("name", "description", "filters", "tags")
    CONFLICT = "precondition"
    bookmark_id: Id
    persona_id: Id
    name: Name
    description: str = ""
    time_from: UtcDatetime | None = None
    time_to: UtcDatetime | None = None
    filters: BookmarkFilters = field(default_factory=BookmarkFilters)
    colour: Colour = "#4f7cac"
    tags: list[Tag] = field(default_factory=list)

    def materialize(self, ctx: Context) -> Sequence[Op]:
        check_time_range(self.NAME, self.time_from, self.time_to)
        _check_filters(self.NAME, self.filters)
        values = {
            "id": self.bookmark_id,
            "persona_id": self.persona_id,
            "name": self.name,
            "description": self.description,
            "time_from": self.time_from,
            "time_to": self.time_to,
            "filters": msgspec.to_builtins(self.filters),
            "colour": self.colour,
            "tags": list(self.tags),
            "created_at": ctx.at,
            "updated_at": ctx.at,
            "deleted_at": None,
        }
        return [require_live_persona(self.persona_id), Insert("bookmarks", values)]


def _update_bookmark(bookmark_id: str, persona_id: str, values: dict[str, Any]) -> Update:
    """Write ``values`` to the persona's live bookmark; fail if there is none."""
    where = {"id": bookmark_id, "persona_id": persona_id, "deleted_at": None}
    missing = Missing(
        "bookmark_id", "persona {0!r} has no bookmark {1!r}", (persona_id, bookmark_id)
    )
    return Update("bookmarks", where, values, missing)


class BookmarkUpdated(Event, frozen=True, kw_only=True):
    """Some of a bookmark's fields changed."""

    NAME = "v1.BookmarkUpdated"
    SENSITIVE = ("name", "description", "filters", "tags")
    CONFLICT = "last_writer_wins"
    bookmark_id: Id
    persona_id: Id
    name: Name | UnsetType = UNSET
    description: str | UnsetType = UNSET
    time_from: UtcDatetime | UnsetType | None = UNSET
    time_to: UtcDatetime | UnsetType | None = UNSET
    filters: BookmarkFilters | UnsetType = UNSET
    colour: Colour | UnsetType = UNSET
    tags: list[Tag] | UnsetType = UNSET

    def materialize(self, ctx: Context) -> Sequence[Op]:
        values = set_fields(self, "name", "description", "time_from", "time_to", "colour")
        if self.filters is not UNSET:
            _check_filters(self.NAME, self.filters)
            values["filters"] = msgspec.to_builtins(self.filters)
        if self.tags is not UNSET:
            values["tags"] = list(self.tags)
        values = stamped(self, values, ctx.at)
        check_time_range(self.NAME, values.get("time_from"), values.get("time_to"))
        return [_update_bookmark(self.bookmark_id, self.persona_id, values)]


class BookmarkDeleted(Event, frozen=True, kw_only=True):
    """A bookmark was removed (soft-deleted)."""

    NAME = "v1.BookmarkDeleted"
    CONFLICT = "precondition"
    bookmark_id: Id
    persona_id: Id

    def materialize(self, ctx: Context) -> Sequence[Op]:
        return [_update_bookmark(self.bookmark_id, self.persona_id, soft_deleted(ctx.at))]
