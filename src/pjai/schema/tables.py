"""PJai's tables, declared once.

The reactive store creates them in its SQLite state database and the SQL primary
creates them through Alembic; both are filled only by the event materializers. Every
text column compares and sorts by code point, on every backend (see
:mod:`pjai.schema.types`).
"""

from __future__ import annotations

from typing import get_args

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    false,
)

from pjai.schema.fields import LinkKind, Tier
from pjai.schema.types import (
    CodePointString,
    CodePointText,
    CompressibleText,
    JsonDocument,
    Timestamp,
)

__all__ = [
    "LINK_KINDS",
    "NAMING_CONVENTION",
    "SENSITIVE",
    "TIERS",
    "bookmarks",
    "consents",
    "conversation_messages",
    "conversations",
    "memories",
    "memory_links",
    "metadata",
    "persona_column",
    "personas",
    "sensitive_columns",
]

TIERS: tuple[Tier, ...] = get_args(Tier)
"""The memory tiers, hottest first."""

LINK_KINDS: tuple[LinkKind, ...] = get_args(LinkKind)
"""The kinds of memory links."""


def _one_of(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""How constraints and indexes are named, in every PJai table (migrations rely on it)."""

metadata = MetaData(naming_convention=NAMING_CONVENTION)

SENSITIVE = {"sensitive": True}
"""The ``info`` of a column holding personal content that a shared SQL primary can keep
sealed (:func:`sensitive_columns`): what the events' sensitive fields
(``Event.SENSITIVE``) become in the tables, less a persona's name and the tags, which
SQL keeps plain to find personas by name and filter by tag."""


def sensitive_columns(meta: MetaData) -> dict[str, tuple[str, ...]]:
    """Per table of ``meta``, its columns that hold personal content."""
    found = {
        table.name: tuple(c.name for c in table.columns if c.info.get("sensitive"))
        for table in meta.sorted_tables
    }
    return {name: columns for name, columns in found.items() if columns}


def persona_column(table: str) -> str:
    """The column of ``table`` that names the persona a row belongs to: the persona's
    own ``id`` in ``personas``, ``persona_id`` in every other table."""
    return "id" if table == "personas" else "persona_id"


personas = Table(
    "personas",
    metadata,
    Column("id", CodePointString, primary_key=True),
    Column("name", CodePointText, nullable=False),
    Column("description", CodePointText, nullable=False, info=SENSITIVE),
    # Big Five, custom traits, dominant traits and type: read and written as one value.
    Column("personality", JsonDocument, nullable=False, info=SENSITIVE),
    Column("communication_style", CodePointText, nullable=False, info=SENSITIVE),
    Column("memory_max_memories", Integer, nullable=False),
    Column("memory_importance_threshold", Float, nullable=False),
    Column("memory_auto_optimize", Boolean, nullable=False),
    Column("memory_retention_days", Integer),
    Column("memory_retention_action", CodePointString, nullable=False),
    Column("memory_restricted_retention_days", Integer),
    Column("memory_capacity_hot", Integer, nullable=False),
    Column("memory_capacity_warm", Integer, nullable=False),
    Column("memory_capacity_cold", Integer, nullable=False),
    Column("memory_scoring", JsonDocument, nullable=False),
    Column("privacy_data_collection", Boolean, nullable=False),
    Column("privacy_analytics", Boolean, nullable=False),
    Column("privacy_share_with_researchers", Boolean, nullable=False),
    Column("privacy_personality_analysis", Boolean, nullable=False),
    Column("privacy_memory_retention", Boolean, nullable=False),
    Column("privacy_export_allowed", Boolean, nullable=False),
    Column("is_active", Boolean, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Column("deleted_at", Timestamp),
    CheckConstraint("length(trim(name)) > 0", name="name_not_blank"),
    CheckConstraint(
        "memory_importance_threshold >= 0 AND memory_importance_threshold <= 1",
        name="importance_threshold_range",
    ),
    CheckConstraint("memory_retention_action IN ('archive', 'delete')", name="retention_action"),
)

memories = Table(
    "memories",
    metadata,
    Column("id", CodePointString, primary_key=True),
    Column("persona_id", CodePointString, ForeignKey("personas.id"), nullable=False),
    Column("type", CodePointString, nullable=False),
    Column("name", CodePointText, nullable=False, info=SENSITIVE),
    # Stored compressed while the memory is cold (see CompressibleText).
    Column("content", CompressibleText, nullable=False, info=SENSITIVE),
    Column("summary", CodePointText, nullable=False, info=SENSITIVE),
    Column("tags", JsonDocument, nullable=False),
    Column("importance", Float, nullable=False),
    Column("tier", CodePointString, nullable=False),
    Column("access_count", Integer, nullable=False),
    Column("last_accessed_at", Timestamp),
    Column("occurred_at", Timestamp, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Column("deleted_at", Timestamp),
    Column("archived_at", Timestamp),
    # Set when the user chose the tier: the optimizer leaves the memory where it is.
    # The one column with a server default: SQLite adds a NOT NULL column only with one.
    Column("pinned", Boolean, nullable=False, server_default=false()),
    CheckConstraint("importance >= 0 AND importance <= 1", name="importance_range"),
    CheckConstraint(_one_of("tier", TIERS), name="tier"),
    CheckConstraint("access_count >= 0", name="access_count"),
    # Holds what memory health counts (pjai.memory.analytics.health_query), which then
    # reads no row; its start serves lookups by persona, tier and importance.
    Index(
        "ix_memories_health",
        "persona_id",
        "tier",
        "importance",
        "deleted_at",
        "created_at",
        "last_accessed_at",
    ),
    Index(None, "persona_id", "occurred_at"),
    Index(None, "persona_id", "created_at"),
    # Counts, pages newest first and timelines of a persona's live memories read this
    # index alone, without visiting the rows.
    Index(None, "persona_id", "deleted_at", "occurred_at"),
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", CodePointString, primary_key=True),
    Column("persona_id", CodePointString, ForeignKey("personas.id"), nullable=False),
    Column("title", CodePointText, nullable=False, info=SENSITIVE),
    Column("message_count", Integer, nullable=False),
    Column("started_at", Timestamp, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    CheckConstraint("message_count >= 0", name="message_count"),
    Index(None, "persona_id", "started_at"),
)

conversation_messages = Table(
    "conversation_messages",
    metadata,
    Column("id", CodePointString, primary_key=True),
    Column("conversation_id", CodePointString, ForeignKey("conversations.id"), nullable=False),
    Column("persona_id", CodePointString, ForeignKey("personas.id"), nullable=False),
    Column("role", CodePointString, nullable=False),
    Column("content", CodePointText, nullable=False, info=SENSITIVE),
    Column("sent_at", Timestamp, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Index(None, "conversation_id", "sent_at"),
)

memory_links = Table(
    "memory_links",
    metadata,
    Column("source_id", CodePointString, ForeignKey("memories.id"), primary_key=True),
    Column("target_id", CodePointString, ForeignKey("memories.id"), primary_key=True),
    Column("kind", CodePointString, primary_key=True),
    Column("persona_id", CodePointString, ForeignKey("personas.id"), nullable=False),
    Column("strength", Float, nullable=False),
    Column("confidence", Float, nullable=False),
    Column("decay_rate", Float, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    CheckConstraint("strength >= 0 AND strength <= 1", name="strength_range"),
    CheckConstraint("confidence >= 0 AND confidence <= 1", name="confidence_range"),
    CheckConstraint("decay_rate >= 0", name="decay_rate"),
    CheckConstraint("source_id != target_id", name="not_self"),
    CheckConstraint(_one_of("kind", LINK_KINDS), name="kind"),
    Index(None, "persona_id", "source_id"),
    Index(None, "target_id"),
)

bookmarks = Table(
    "bookmarks",
    metadata,
    Column("id", CodePointString, primary_key=True),
    Column("persona_id", CodePointString, ForeignKey("personas.id"), nullable=False),
    Column("name", CodePointText, nullable=False, info=SENSITIVE),
    Column("description", CodePointText, nullable=False, info=SENSITIVE),
    Column("time_from", Timestamp),
    Column("time_to", Timestamp),
    # Memory filters: tiers, types, tags, importance range, hours of the day.
    Column("filters", JsonDocument, nullable=False, info=SENSITIVE),
    Column("colour", CodePointString, nullable=False),
    Column("tags", JsonDocument, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Column("deleted_at", Timestamp),
    CheckConstraint(
        "time_from IS NULL OR time_to IS NULL OR time_from <= time_to", name="time_range"
    ),
    Index(None, "persona_id", "name"),
)

consents = Table(
    "consents",
    metadata,
    # The latest consent of a persona's data subject for one purpose; its history is
    # the ``v1.ConsentRecorded`` events in the audit trail.
    Column("persona_id", CodePointString, ForeignKey("personas.id"), primary_key=True),
    Column("purpose", CodePointString, primary_key=True),
    Column("granted", Boolean, nullable=False),
    Column("version", CodePointString, nullable=False),
    Column("recorded_at", Timestamp, nullable=False),
)
