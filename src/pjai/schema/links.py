"""Memory link events: linked, updated, unlinked, and links decaying over time."""

from __future__ import annotations

from collections.abc import Sequence

from msgspec import UNSET, UnsetType

from pjai.errors import EventValidationError
from pjai.schema.event import Context, Event
from pjai.schema.fields import DayRate, Days, Id, LinkKind, UnitInterval
from pjai.schema.memories import require_live_memory
from pjai.schema.ops import Decayed, Delete, Greatest, Insert, Missing, Op, Update
from pjai.schema.updates import set_fields, stamped

__all__ = ["LinkKind", "MemoryLinkUpdated", "MemoryLinked", "MemoryLinksDecayed", "MemoryUnlinked"]


def _key(persona_id: str, source_id: str, target_id: str, kind: str) -> dict[str, str]:
    return {"source_id": source_id, "target_id": target_id, "kind": kind, "persona_id": persona_id}


def _no_link(source_id: str, target_id: str, kind: str) -> Missing:
    return Missing("source_id", "no {2} link from {0!r} to {1!r}", (source_id, target_id, kind))


class MemoryLinked(Event, frozen=True, kw_only=True):
    """Two live memories of a persona were linked (a directed, typed edge)."""

    NAME = "v1.MemoryLinked"
    CONFLICT = "precondition"
    persona_id: Id
    source_id: Id
    target_id: Id
    kind: LinkKind = "related"
    strength: UnitInterval = 0.5
    confidence: UnitInterval = 1.0
    decay_rate: DayRate = 0.0
    """Per day: a decay run of ``d`` days multiplies strength by ``exp(-rate * d)``."""

    def materialize(self, ctx: Context) -> Sequence[Op]:
        if self.source_id == self.target_id:
            raise EventValidationError(
                self.NAME, "a memory cannot link to itself", field="target_id"
            )
        values = {
            **_key(self.persona_id, self.source_id, self.target_id, self.kind),
            "strength": self.strength,
            "confidence": self.confidence,
            "decay_rate": self.decay_rate,
            "created_at": ctx.at,
            "updated_at": ctx.at,
        }
        return [
            require_live_memory(self.source_id, self.persona_id, "source_id"),
            require_live_memory(self.target_id, self.persona_id, "target_id"),
            Insert("memory_links", values),
        ]


class MemoryLinkUpdated(Event, frozen=True, kw_only=True):
    """A link's strength, confidence or decay rate changed."""

    NAME = "v1.MemoryLinkUpdated"
    CONFLICT = "last_writer_wins"
    persona_id: Id
    source_id: Id
    target_id: Id
    kind: LinkKind = "related"
    strength: UnitInterval | UnsetType = UNSET
    confidence: UnitInterval | UnsetType = UNSET
    decay_rate: DayRate | UnsetType = UNSET

    def materialize(self, ctx: Context) -> Sequence[Op]:
        values = stamped(self, set_fields(self, "strength", "confidence", "decay_rate"), ctx.at)
        key = _key(self.persona_id, self.source_id, self.target_id, self.kind)
        missing = _no_link(self.source_id, self.target_id, self.kind)
        return [Update("memory_links", key, values, missing)]


class MemoryUnlinked(Event, frozen=True, kw_only=True):
    """A link was removed."""

    NAME = "v1.MemoryUnlinked"
    CONFLICT = "precondition"
    persona_id: Id
    source_id: Id
    target_id: Id
    kind: LinkKind = "related"

    def materialize(self, ctx: Context) -> Sequence[Op]:
        key = _key(self.persona_id, self.source_id, self.target_id, self.kind)
        return [Delete("memory_links", key, _no_link(self.source_id, self.target_id, self.kind))]


class MemoryLinksDecayed(Event, frozen=True, kw_only=True):
    """``days`` passed for a persona's links: each strength times ``exp(-rate * days)``."""

    NAME = "v1.MemoryLinksDecayed"
    CONFLICT = "commutative"
    persona_id: Id
    days: Days

    def materialize(self, ctx: Context) -> Sequence[Op]:
        # Decays multiply, and the latest time stays: runs commute (CONFLICT).
        values = {"strength": Decayed("decay_rate", self.days), "updated_at": Greatest(ctx.at)}
        return [Update("memory_links", {"persona_id": self.persona_id}, values)]
