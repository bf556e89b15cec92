"""The one definition of PJai's data: tables, events and their materializers."""

from __future__ import annotations

from pjai.schema.event import Context, Event, Schema, Upcaster
from pjai.schema.memories import (
    MemoryAccessed,
    MemoryAdded,
    MemoryDeleted,
    MemoryRestored,
    MemoryTierChanged,
    MemoryUpdated,
)
from pjai.schema.personas import (
    BigFive,
    MemoryConfig,
    PersonaActivated,
    PersonaCreated,
    PersonaDeactivated,
    PersonaDeleted,
    Personality,
    PersonaUpdated,
    PrivacySettings,
    TierCapacities,
)
from pjai.schema.tables import TIERS, memories, metadata, personas
from pjai.schema.types import new_id, utc_now

__all__ = [
    "SCHEMA",
    "TIERS",
    "BigFive",
    "Context",
    "Event",
    "MemoryAccessed",
    "MemoryAdded",
    "MemoryConfig",
    "MemoryDeleted",
    "MemoryRestored",
    "MemoryTierChanged",
    "MemoryUpdated",
    "PersonaActivated",
    "PersonaCreated",
    "PersonaDeactivated",
    "PersonaDeleted",
    "PersonaUpdated",
    "Personality",
    "PrivacySettings",
    "Schema",
    "TierCapacities",
    "Upcaster",
    "memories",
    "metadata",
    "new_id",
    "personas",
    "utc_now",
]

SCHEMA = Schema(
    metadata,
    [
        PersonaCreated,
        PersonaUpdated,
        PersonaActivated,
        PersonaDeactivated,
        PersonaDeleted,
        MemoryAdded,
        MemoryUpdated,
        MemoryAccessed,
        MemoryTierChanged,
        MemoryDeleted,
        MemoryRestored,
    ],
    version=1,
)
"""PJai's current schema: every table and event type this version knows."""
