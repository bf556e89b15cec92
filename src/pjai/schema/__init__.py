"""The one definition of PJai's data: tables, events and their materializers."""

from __future__ import annotations

from pjai.schema.bookmarks import BookmarkCreated, BookmarkDeleted, BookmarkFilters, BookmarkUpdated
from pjai.schema.config import ConfigChanged
from pjai.schema.consents import ConsentRecorded
from pjai.schema.conversations import ConversationMessageAdded, ConversationStarted
from pjai.schema.event import ConflictPolicy, Context, Event, Schema, Upcaster
from pjai.schema.links import (
    LinkKind,
    MemoryLinked,
    MemoryLinksDecayed,
    MemoryLinkUpdated,
    MemoryUnlinked,
)
from pjai.schema.memories import (
    MemoryAccessed,
    MemoryAdded,
    MemoryArchived,
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
    PersonaErased,
    PersonaImported,
    Personality,
    PersonaRestored,
    PersonaUpdated,
    PrivacySettings,
    ScoringConfig,
    TierCapacities,
    TierShares,
)
from pjai.schema.records import ROOT, EventRecord, EventStatus, LogEntry, Position
from pjai.schema.search import SEARCH_CREATE as _SEARCH_CREATE
from pjai.schema.search import SEARCH_DIRTY as _SEARCH_DIRTY
from pjai.schema.search import SEARCH_FILL as _SEARCH_FILL
from pjai.schema.search import SEARCH_FLUSH as _SEARCH_FLUSH
from pjai.schema.selection import MemoryFilter, bookmark_filter, memory_conditions
from pjai.schema.tables import (
    LINK_KINDS,
    TIERS,
    bookmarks,
    conversation_messages,
    conversations,
    memories,
    memory_links,
    metadata,
    personas,
)
from pjai.schema.types import new_id, utc_now

__all__ = [
    "LINK_KINDS",
    "ROOT",
    "SCHEMA",
    "TIERS",
    "BigFive",
    "BookmarkCreated",
    "BookmarkDeleted",
    "BookmarkFilters",
    "BookmarkUpdated",
    "ConfigChanged",
    "ConflictPolicy",
    "ConsentRecorded",
    "Context",
    "ConversationMessageAdded",
    "ConversationStarted",
    "Event",
    "EventRecord",
    "EventStatus",
    "LinkKind",
    "LogEntry",
    "MemoryAccessed",
    "MemoryAdded",
    "MemoryArchived",
    "MemoryConfig",
    "MemoryDeleted",
    "MemoryFilter",
    "MemoryImported",
    "MemoryLinkUpdated",
    "MemoryLinked",
    "MemoryLinksDecayed",
    "MemoryRestored",
    "MemoryTierChanged",
    "MemoryUnlinked",
    "MemoryUpdated",
    "PersonaActivated",
    "PersonaCreated",
    "PersonaDeactivated",
    "PersonaDeleted",
    "PersonaErased",
    "PersonaImported",
    "PersonaRestored",
    "PersonaUpdated",
    "Personality",
    "Position",
    "PrivacySettings",
    "Schema",
    "ScoringConfig",
    "TierCapacities",
    "TierShares",
    "Upcaster",
    "bookmark_filter",
    "bookmarks",
    "conversation_messages",
    "conversations",
    "memories",
    "memory_conditions",
    "memory_links",
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
        PersonaErased,
        PersonaRestored,
        MemoryAdded,
        MemoryUpdated,
        MemoryAccessed,
        MemoryTierChanged,
        MemoryDeleted,
        MemoryRestored,
        MemoryImported,
        MemoryArchived,
        MemoryLinked,
        MemoryLinkUpdated,
        MemoryUnlinked,
        MemoryLinksDecayed,
        ConversationStarted,
        ConversationMessageAdded,
        BookmarkCreated,
        BookmarkUpdated,
        BookmarkDeleted,
        ConfigChanged,
        ConsentRecorded,
    ],
    # 2: decays and messages keep the latest updated_at (they commute)
    # 3: memories are pinned by a tier the user chose, unpinned by archiving
    version=3,
    derived=_SEARCH_CREATE,
    derived_fill=_SEARCH_FILL,
    derived_flush={_SEARCH_DIRTY: _SEARCH_FLUSH},
)
"""PJai's current schema: every table and event type this version knows."""
