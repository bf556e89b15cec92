"""Memory events: added, updated, accessed, tier changed, deleted, restored.

Every memory event names its persona: a memory never changes persona, and the id lets
the SQL primary route the event to the persona's shard and live queries skip work
for other personas.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, UnsetType, field

from pjai.schema.event import Context, Event
from pjai.schema.fields import (
    Content,
    Count,
    Id,
    MemoryType,
    PositiveInt,
    Source,
    Tag,
    Tier,
    TierChangeReason,
    UnitInterval,
    UtcDatetime,
)
from pjai.schema.limits import INT32_MAX
from pjai.schema.ops import (
    NOT_NULL,
    Compress,
    Compressed,
    Decompress,
    Greatest,
    Increment,
    Insert,
    Missing,
    Op,
    TextForTier,
    Update,
)
from pjai.schema.personas import require_live_persona
from pjai.schema.updates import set_fields, soft_deleted, stamped, undeleted

__all__ = [
    "MemoryAccessed",
    "MemoryAdded",
    "MemoryArchived",
    "MemoryDeleted",
    "MemoryImported",
    "MemoryRestored",
    "MemoryTierChanged",
    "MemoryUpdated",
]

Tags = Annotated[list[Tag], Meta(max_length=64)]
Text = Annotated[str, Meta(max_length=1_000_000)]


def _memory(memory_id: str, persona_id: str, *, deleted: bool = False) -> dict[str, Any]:
    return {"id": memory_id, "persona_id": persona_id, "deleted_at": NOT_NULL if deleted else None}


def _no_memory(
    memory_id: str, persona_id: str, *, deleted: bool = False, field: str = "memory_id"
) -> Missing:
    state = "deleted" if deleted else "live"
    return Missing(field, "persona {0!r} has no {1} memory {2!r}", (persona_id, state, memory_id))


def require_live_memory(memory_id: str, persona_id: str, field: str = "memory_id") -> Update:
    """A check that the persona's memory ``memory_id`` exists and is not deleted; the
    event's ``field`` gave the id."""
    missing = _no_memory(memory_id, persona_id, field=field)
    return Update("memories", _memory(memory_id, persona_id), {}, missing)


def _update_memory(
    memory_id: str, persona_id: str, values: dict[str, Any], *, deleted: bool = False
) -> Update:
    """Write ``values`` to the persona's live (or deleted) memory; fail if there is none."""
    where = _memory(memory_id, persona_id, deleted=deleted)
    return Update("memories", where, values, _no_memory(memory_id, persona_id, deleted=deleted))


class MemoryAdded(Event, frozen=True, kw_only=True):
    """A memory was recorded. ``occurred_at`` defaults to the time it was recorded.

    ``pinned``: the user chose its tier, so the optimizer leaves it there.
    """

    NAME = "v1.MemoryAdded"
    SENSITIVE = ("name", "content", "summary", "tags")
    CONFLICT = "precondition"
    memory_id: Id
    persona_id: Id
    content: Content
    name: Text = ""
    summary: Text = ""
    type: MemoryType = "note"
    tags: Tags = field(default_factory=list)
    importance: UnitInterval = 0.5
    tier: Tier = "warm"
    occurred_at: UtcDatetime | None = None
    pinned: bool = False

    def materialize(self, ctx: Context) -> Sequence[Op]:
        return [require_live_persona(self.persona_id), Insert("memories", self._row(ctx.at))]

    def _row(self, at: datetime) -> dict[str, Any]:
        return {
            "id": self.memory_id,
            "persona_id": self.persona_id,
            "type": self.type,
            "name": self.name,
            "content": Compressed(self.content) if self.tier == "cold" else self.content,
            "summary": self.summary,
            "tags": list(self.tags),
            "importance": self.importance,
            "tier": self.tier,
            "access_count": 0,
            "last_accessed_at": None,
            "occurred_at": self.occurred_at or at,
            "created_at": at,
            "updated_at": at,
            "deleted_at": None,
            "archived_at": None,
            "pinned": self.pinned,
        }


class MemoryImported(MemoryAdded, frozen=True, kw_only=True):
    """A memory brought over from another system with its recorded times and counts.

    ``occurred_at`` defaults to ``created_at``; a ``deleted_at`` imports it deleted.
    """

    NAME = "v1.MemoryImported"
    CONFLICT = "precondition"
    source: Source
    created_at: UtcDatetime
    updated_at: UtcDatetime
    deleted_at: UtcDatetime | None = None
    access_count: Count = 0
    last_accessed_at: UtcDatetime | None = None

    def materialize(self, ctx: Context) -> Sequence[Op]:
        row = self._row(self.created_at)
        row.update(
            updated_at=self.updated_at,
            deleted_at=self.deleted_at,
            access_count=self.access_count,
            last_accessed_at=self.last_accessed_at,
        )
        return [require_live_persona(self.persona_id), Insert("memories", row)]


class MemoryUpdated(Event, frozen=True, kw_only=True):
    """Some fields of a live memory changed; fields left unset keep their value.

    ``pinned`` pins the memory in the tier it is in, or lets the optimizer move it again.
    """

    NAME = "v1.MemoryUpdated"
    SENSITIVE = ("name", "content", "summary", "tags")
    CONFLICT = "last_writer_wins"
    memory_id: Id
    persona_id: Id
    content: Content | UnsetType = UNSET
    name: Text | UnsetType = UNSET
    summary: Text | UnsetType = UNSET
    type: MemoryType | UnsetType = UNSET
    tags: Tags | UnsetType = UNSET
    importance: UnitInterval | UnsetType = UNSET
    occurred_at: UtcDatetime | UnsetType = UNSET
    pinned: bool | UnsetType = UNSET

    def materialize(self, ctx: Context) -> Sequence[Op]:
        values = set_fields(self, "name", "summary", "type", "importance", "occurred_at", "pinned")
        if self.content is not UNSET:
            values["content"] = TextForTier(self.content)
        if self.tags is not UNSET:
            values["tags"] = list(self.tags)
        return [_update_memory(self.memory_id, self.persona_id, stamped(self, values, ctx.at))]


class MemoryAccessed(Event, frozen=True, kw_only=True):
    """A live memory was opened ``count`` times. Commutes with other accesses."""

    NAME = "v1.MemoryAccessed"
    CONFLICT = "commutative"
    memory_id: Id
    persona_id: Id
    count: PositiveInt = 1

    def materialize(self, ctx: Context) -> Sequence[Op]:
        values = {
            "access_count": Increment(self.count, INT32_MAX),
            "last_accessed_at": Greatest(ctx.at),
        }
        return [_update_memory(self.memory_id, self.persona_id, values)]


class MemoryTierChanged(Event, frozen=True, kw_only=True):
    """A live memory moved to another tier, with the reason and the score behind it.

    ``pinned``: the user moved it, so the optimizer leaves it there; a move without it
    (the optimizer's) leaves the memory unpinned.
    """

    NAME = "v1.MemoryTierChanged"
    CONFLICT = "last_writer_wins"
    memory_id: Id
    persona_id: Id
    tier: Tier
    reason: TierChangeReason
    score: float | None = None
    pinned: bool = False

    def materialize(self, ctx: Context) -> Sequence[Op]:
        # Cold content is kept compressed; leaving the cold tier stores it plain again,
        # and an archived memory brought out of cold is no longer archived.
        values: dict[str, Any] = {"tier": self.tier, "content": Compress(), "pinned": self.pinned}
        if self.tier != "cold":
            values.update(content=Decompress(), archived_at=None)
        return [_update_memory(self.memory_id, self.persona_id, values)]


class MemoryArchived(Event, frozen=True, kw_only=True):
    """A live memory was archived: moved to the cold tier, compressed, marked ``archived_at``.

    It stays searchable and can still be opened; retention archives memories this way
    when the persona's retention action is ``archive``. An archived memory is no longer
    pinned: the optimizer ranks archived memories no more, and moving one out of cold
    is a new choice of tier.
    """

    NAME = "v1.MemoryArchived"
    CONFLICT = "precondition"
    memory_id: Id
    persona_id: Id
    reason: Literal["retention", "manual"] = "manual"

    def materialize(self, ctx: Context) -> Sequence[Op]:
        where = {**_memory(self.memory_id, self.persona_id), "archived_at": None}
        missing = Missing(
            "memory_id",
            "persona {0!r} has no live, unarchived memory {1!r}",
            (self.persona_id, self.memory_id),
        )
        values = {"tier": "cold", "content": Compress(), "archived_at": ctx.at, "pinned": False}
        return [Update("memories", where, values, missing)]


class MemoryDeleted(Event, frozen=True, kw_only=True):
    """A live memory was soft-deleted; MemoryRestored brings it back."""

    NAME = "v1.MemoryDeleted"
    CONFLICT = "precondition"
    memory_id: Id
    persona_id: Id

    def materialize(self, ctx: Context) -> Sequence[Op]:
        return [_update_memory(self.memory_id, self.persona_id, soft_deleted(ctx.at))]


class MemoryRestored(Event, frozen=True, kw_only=True):
    """A soft-deleted memory of a live persona is live again."""

    NAME = "v1.MemoryRestored"
    CONFLICT = "precondition"
    memory_id: Id
    persona_id: Id

    def materialize(self, ctx: Context) -> Sequence[Op]:
        values = undeleted(ctx.at)
        restored = _update_memory(self.memory_id, self.persona_id, values, deleted=True)
        return [require_live_persona(self.persona_id), restored]
