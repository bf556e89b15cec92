"""The one definition of PJai's data: tables, events and their materializers."""

from __future__ import annotations

from pjai.schema.conversations import ConversationMessageAdded, ConversationStarted
from pjai.schema.event import Context, Event, Schema, Upcaster
from pjai.schema.memories import (
    MemoryAccessed,
    MemoryAdded,
    MemoryDeleted,
    MemoryImported,
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
    PersonaImported,
    Personality,
    PersonaUpdated,
    PrivacySettings,
    TierCapacities,
)
from pjai.schema.records import ROOT, EventRecord, EventStatus, LogEntry, Position
from pjai.schema.tables import (
    TIERS,
    conversation_messages,
    conversations,
    memories,
    metadata,
    personas,
)
from pjai.schema.types import new_id, utc_now

__all__ = [
    "ROOT",
    "SCHEMA",
    "TIERS",
    "BigFive",
    "Context",
    "ConversationMessageAdded",
    "ConversationStarted",
    "Event",
    "EventRecord",
    "EventStatus",
    "LogEntry",
    "MemoryAccessed",
    "MemoryAdded",
    "MemoryConfig",
    "MemoryDeleted",
    "MemoryImported",
    "MemoryRestored",
    "MemoryTierChanged",
    "MemoryUpdated",
    "PersonaActivated",
    "PersonaCreated",
    "PersonaDeactivated",
    "PersonaDeleted",
    "PersonaImported",
    "PersonaUpdated",
    "Personality",
    "Position",
    "PrivacySettings",
    "Schema",
    "TierCapacities",
    "Upcaster",
    "conversation_messages",
    "conversations",
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
        PersonaImported,
        MemoryAdded,
        MemoryUpdated,
        MemoryAccessed,
        MemoryTierChanged,
        MemoryDeleted,
        MemoryRestored,
        MemoryImported,
        ConversationStarted,
        ConversationMessageAdded,
    ],
    version=1,
)
"""PJai's current schema: every table and event type this version knows."""
