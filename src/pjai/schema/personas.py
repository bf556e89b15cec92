"""Persona events: created, updated, activated, deactivated, deleted, restored."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType, field

from pjai.errors import EventValidationError
from pjai.schema.event import Context, Event
from pjai.schema.fields import (
    DayCount,
    Id,
    Name,
    NonNegative,
    Percent,
    PositiveFloat,
    PositiveInt,
    Proof,
    Source,
    UnitInterval,
    UtcDatetime,
)
from pjai.schema.ops import NOT_NULL, Delete, Insert, Missing, Op, Update
from pjai.schema.updates import set_fields, soft_deleted, stamped, undeleted

__all__ = [
    "ERASED_TABLES",
    "NO_PERSONA_ID",
    "BigFive",
    "MemoryConfig",
    "PersonaActivated",
    "PersonaCreated",
    "PersonaDeactivated",
    "PersonaDeleted",
    "PersonaErased",
    "PersonaImported",
    "PersonaRestored",
    "PersonaUpdated",
    "Personality",
    "PrivacySettings",
    "ScoringConfig",
    "TierCapacities",
    "TierShares",
    "creations",
]

NO_PERSONA_ID = "store"
"""The one id no persona may have: the key ring's scope for sensitive fields that belong
to no persona (:data:`pjai.security.keys.STORE_SCOPE`). A persona with it would share
that scope's keys, so that erasing it would destroy them, and its erasure would never be
looked for as unfinished."""

TraitName = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"(?s)^\S(.*\S)?$")]


class BigFive(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False):
    """The Big Five personality traits, each 0-100."""

    openness: Percent = 50
    conscientiousness: Percent = 50
    extraversion: Percent = 50
    agreeableness: Percent = 50
    neuroticism: Percent = 50


class Personality(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False):
    """Big Five traits, custom traits (0-100), the dominant traits and a type label."""

    big_five: BigFive = field(default_factory=BigFive)
    custom_traits: dict[TraitName, Percent] = {}
    dominant_traits: Annotated[list[TraitName], Meta(max_length=16)] = []
    type: Annotated[str, Meta(max_length=64)] = ""


class TierCapacities(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False):
    """How many memories each tier holds before the optimizer moves some down."""

    hot: PositiveInt = 100
    warm: PositiveInt = 1_000
    cold: PositiveInt = 10_000


class TierShares(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False):
    """The share of memories each tier should hold; fragmentation is the distance to it."""

    hot: UnitInterval = 0.1
    warm: UnitInterval = 0.3
    cold: UnitInterval = 0.6


class ScoringConfig(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False):
    """How memories are ranked: see :mod:`pjai.memory.scoring` for the formula."""

    importance_weight: NonNegative = 0.4
    recency_weight: NonNegative = 0.3
    frequency_weight: NonNegative = 0.2
    links_weight: NonNegative = 0.1
    half_life_days: PositiveFloat = 30.0
    recency_floor: UnitInterval = 0.05
    access_scale: PositiveFloat = 5.0
    link_scale: PositiveFloat = 3.0
    stale_after_days: DayCount = 90
    target: TierShares = field(default_factory=TierShares)


class MemoryConfig(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False):
    """How a persona's memory is kept: size, threshold, optimization and retention."""

    max_memories: PositiveInt = 10_000
    importance_threshold: UnitInterval = 0.3
    auto_optimize: bool = True
    retention_days: DayCount | None = None
    retention_action: Literal["archive", "delete"] = "archive"
    restricted_retention_days: DayCount | None = None
    """How long a memory tagged ``restricted`` (personal data classified at write time)
    is kept before the optimizer deletes it; ``None`` keeps it as any other."""
    capacities: TierCapacities = field(default_factory=TierCapacities)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)


class PrivacySettings(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False):
    """The privacy choices a persona's owner made."""

    data_collection: bool = True
    analytics: bool = False
    share_with_researchers: bool = False
    personality_analysis: bool = True
    memory_retention: bool = True
    export_allowed: bool = True


def _memory_columns(config: MemoryConfig) -> dict[str, Any]:
    return {
        "memory_max_memories": config.max_memories,
        "memory_importance_threshold": config.importance_threshold,
        "memory_auto_optimize": config.auto_optimize,
        "memory_retention_days": config.retention_days,
        "memory_retention_action": config.retention_action,
        "memory_restricted_retention_days": config.restricted_retention_days,
        "memory_capacity_hot": config.capacities.hot,
        "memory_capacity_warm": config.capacities.warm,
        "memory_capacity_cold": config.capacities.cold,
        "memory_scoring": msgspec.to_builtins(config.scoring),
    }


def _check_id(event: str, persona_id: str) -> None:
    if persona_id == NO_PERSONA_ID:
        reason = f"{persona_id!r} is kept for what belongs to no persona: give another id"
        raise EventValidationError(event, reason, field="persona_id")


def _check_memory(event: str, config: MemoryConfig) -> None:
    scoring = config.scoring
    weights = (
        scoring.importance_weight,
        scoring.recency_weight,
        scoring.frequency_weight,
        scoring.links_weight,
    )
    if sum(weights) <= 0:
        raise EventValidationError(event, "needs a positive weight", field="memory.scoring")
    shares = scoring.target.hot + scoring.target.warm + scoring.target.cold
    if abs(shares - 1) > 0.01:
        reason = f"tier shares must add up to 1, got {shares:.3f}"
        raise EventValidationError(event, reason, field="memory.scoring.target")


def _privacy_columns(privacy: PrivacySettings) -> dict[str, Any]:
    return {f"privacy_{name}": getattr(privacy, name) for name in privacy.__struct_fields__}


def _update_persona(persona_id: str, values: dict[str, Any]) -> Update:
    """Write ``values`` to the live persona; fail if it does not exist or is deleted."""
    missing = Missing("persona_id", "persona {0!r} does not exist or is deleted", (persona_id,))
    return Update("personas", {"id": persona_id, "deleted_at": None}, values, missing)


def require_live_persona(persona_id: str) -> Update:
    """A check that the persona exists and is not deleted."""
    return _update_persona(persona_id, {})


class PersonaCreated(Event, frozen=True, kw_only=True):
    """A persona was created (inactive until a PersonaActivated)."""

    NAME = "v1.PersonaCreated"
    SENSITIVE = ("name", "description", "personality", "communication_style")
    CONFLICT = "precondition"
    persona_id: Id
    name: Name
    description: str = ""
    personality: Personality = field(default_factory=Personality)
    communication_style: str = ""
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)

    def materialize(self, ctx: Context) -> Sequence[Op]:
        return self._insert(ctx.at, ctx.at)

    def _insert(self, created_at: datetime, updated_at: datetime) -> list[Op]:
        """The insert of the persona with these times, once its id and memory are checked."""
        _check_id(self.NAME, self.persona_id)
        _check_memory(self.NAME, self.memory)
        row = {
            "id": self.persona_id,
            "name": self.name,
            "description": self.description,
            "personality": msgspec.to_builtins(self.personality),
            "communication_style": self.communication_style,
            **_memory_columns(self.memory),
            **_privacy_columns(self.privacy),
            "is_active": False,
            "created_at": created_at,
            "updated_at": updated_at,
            "deleted_at": None,
        }
        return [Insert("personas", row)]


class PersonaImported(PersonaCreated, frozen=True, kw_only=True):
    """A persona brought over from another system, keeping the times it recorded.

    Like PersonaCreated, it arrives inactive; the importer activates the one that was
    active with a PersonaActivated.
    """

    NAME = "v1.PersonaImported"
    CONFLICT = "precondition"
    source: Source
    created_at: UtcDatetime
    updated_at: UtcDatetime

    def materialize(self, ctx: Context) -> Sequence[Op]:
        return self._insert(self.created_at, self.updated_at)


def creations(event_types: Iterable[type[Event]]) -> frozenset[str]:
    """The names of the events of ``event_types`` that make a persona (a
    :class:`PersonaCreated` or one of its kinds): the data key each is sealed with
    starts a lineage of the persona's keys."""
    return frozenset(t.NAME for t in event_types if issubclass(t, PersonaCreated))


class PersonaUpdated(Event, frozen=True, kw_only=True):
    """Some of a persona's settings changed; fields left unset keep their value.

    Each of ``personality``, ``memory`` and ``privacy`` is replaced as a whole.
    """

    NAME = "v1.PersonaUpdated"
    SENSITIVE = ("name", "description", "personality", "communication_style")
    CONFLICT = "last_writer_wins"
    persona_id: Id
    name: Name | UnsetType = UNSET
    description: str | UnsetType = UNSET
    personality: Personality | UnsetType = UNSET
    communication_style: str | UnsetType = UNSET
    memory: MemoryConfig | UnsetType = UNSET
    privacy: PrivacySettings | UnsetType = UNSET

    def materialize(self, ctx: Context) -> Sequence[Op]:
        values = set_fields(self, "name", "description", "personality", "communication_style")
        if self.personality is not UNSET:
            values["personality"] = msgspec.to_builtins(self.personality)
        if self.memory is not UNSET:
            _check_memory(self.NAME, self.memory)
            values.update(_memory_columns(self.memory))
        if self.privacy is not UNSET:
            values.update(_privacy_columns(self.privacy))
        return [_update_persona(self.persona_id, stamped(self, values, ctx.at))]


class PersonaActivated(Event, frozen=True, kw_only=True):
    """This persona becomes the active one; any other active persona is deactivated."""

    NAME = "v1.PersonaActivated"
    CONFLICT = "last_writer_wins"
    persona_id: Id

    def materialize(self, ctx: Context) -> Sequence[Op]:
        return [
            require_live_persona(self.persona_id),
            Update("personas", {"is_active": True}, {"is_active": False, "updated_at": ctx.at}),
            Update("personas", {"id": self.persona_id}, {"is_active": True, "updated_at": ctx.at}),
        ]


class PersonaDeactivated(Event, frozen=True, kw_only=True):
    """The persona is no longer active; afterwards no persona is active."""

    NAME = "v1.PersonaDeactivated"
    CONFLICT = "last_writer_wins"
    persona_id: Id

    def materialize(self, ctx: Context) -> Sequence[Op]:
        return [_update_persona(self.persona_id, {"is_active": False, "updated_at": ctx.at})]


class PersonaDeleted(Event, frozen=True, kw_only=True):
    """The persona and all its memories are soft-deleted (kept, marked ``deleted_at``)."""

    NAME = "v1.PersonaDeleted"
    CONFLICT = "precondition"
    persona_id: Id

    def materialize(self, ctx: Context) -> Sequence[Op]:
        deleted = soft_deleted(ctx.at)
        return [
            _update_persona(self.persona_id, {"is_active": False, **deleted}),
            Update("memories", {"persona_id": self.persona_id, "deleted_at": None}, deleted),
        ]


ERASED_TABLES = (
    "memory_links",
    "conversation_messages",
    "memories",
    "conversations",
    "bookmarks",
    "consents",
)
"""The tables holding a persona's rows besides ``personas``, children before parents."""


class PersonaErased(Event, frozen=True, kw_only=True):
    """The persona and everything of it are gone for good (the right to erasure): its
    rows are deleted from every table, live or deleted. The event names the persona
    only; its data keys are destroyed beside the log (:mod:`pjai.security`), so its
    sealed events no longer open anywhere. In an encrypted directory it carries a
    ``proof`` made with the store key (``PROVED``), added as it is made there: one
    with no proof, or another's, does not apply there (:mod:`pjai.security.fields`). In a
    directory that is not encrypted it has none, and its arguments are as before."""

    NAME = "v1.PersonaErased"
    CONFLICT = "precondition"
    PROVED = True
    persona_id: Id
    proof: Proof | UnsetType = UNSET

    def materialize(self, ctx: Context) -> Sequence[Op]:
        missing = Missing("persona_id", "persona {0!r} does not exist", (self.persona_id,))
        return [
            *(Delete(table, {"persona_id": self.persona_id}) for table in ERASED_TABLES),
            Delete("personas", {"id": self.persona_id}, missing),
        ]


class PersonaRestored(Event, frozen=True, kw_only=True):
    """A deleted persona is live again, with the memories its deletion deleted.

    ``deleted_at`` is when the persona was deleted: the memories deleted at that moment
    (by its ``PersonaDeleted``) come back, those deleted before it stay deleted. It
    comes back inactive.
    """

    NAME = "v1.PersonaRestored"
    CONFLICT = "precondition"
    persona_id: Id
    deleted_at: UtcDatetime

    def materialize(self, ctx: Context) -> Sequence[Op]:
        missing = Missing("persona_id", "no deleted persona {0!r}", (self.persona_id,))
        restored = undeleted(ctx.at)
        return [
            Update("personas", {"id": self.persona_id, "deleted_at": NOT_NULL}, restored, missing),
            Update(
                "memories", {"persona_id": self.persona_id, "deleted_at": self.deleted_at}, restored
            ),
        ]
