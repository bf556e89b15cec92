"""Initial tables: personas, memories, links, bookmarks, conversations, the journal."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pjai.schema.types

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "personas",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("personality", pjai.schema.types.JsonDocument(), nullable=False),
        sa.Column("communication_style", sa.Text(), nullable=False),
        sa.Column("memory_max_memories", sa.Integer(), nullable=False),
        sa.Column("memory_importance_threshold", sa.Float(), nullable=False),
        sa.Column("memory_auto_optimize", sa.Boolean(), nullable=False),
        sa.Column("memory_retention_days", sa.Integer(), nullable=True),
        sa.Column("memory_retention_action", sa.String(), nullable=False),
        sa.Column("memory_capacity_hot", sa.Integer(), nullable=False),
        sa.Column("memory_capacity_warm", sa.Integer(), nullable=False),
        sa.Column("memory_capacity_cold", sa.Integer(), nullable=False),
        sa.Column("memory_scoring", pjai.schema.types.JsonDocument(), nullable=False),
        sa.Column("privacy_data_collection", sa.Boolean(), nullable=False),
        sa.Column("privacy_analytics", sa.Boolean(), nullable=False),
        sa.Column("privacy_share_with_researchers", sa.Boolean(), nullable=False),
        sa.Column("privacy_personality_analysis", sa.Boolean(), nullable=False),
        sa.Column("privacy_memory_retention", sa.Boolean(), nullable=False),
        sa.Column("privacy_export_allowed", sa.Boolean(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", pjai.schema.types.Timestamp(timezone=True), nullable=False),
        sa.Column("updated_at", pjai.schema.types.Timestamp(timezone=True), nullable=False),
        sa.Column("deleted_at", pjai.schema.types.Timestamp(timezone=True), nullable=True),
        sa.CheckConstraint(
            "memory_retention_action IN ('archive', 'delete')",
            name=op.f("ck_personas_retention_action"),
        ),
        sa.CheckConstraint("length(trim(name)) > 0", name=op.f("ck_personas_name_not_blank")),
        sa.CheckConstraint(
            "memory_importance_threshold >= 0 AND memory_importance_threshold <= 1",
            name=op.f("ck_personas_importance_threshold_range"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_personas")),
    )
    op.create_table(
        "bookmarks",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("persona_id", sa.String(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("time_from", pjai.schema.types.Timestamp(timezone=True), nullable=True),
        sa.Column("time_to", pjai.schema.types.Timestamp(timezone=True), nullable=True),
        sa.Column("filters", pjai.schema.types.JsonDocument(), nullable=False),
        sa.Column("colour", sa.String(), nullable=False),
        sa.Column("tags", pjai.schema.types.JsonDocument(), nullable=False),
        sa.Column("created_at", pjai.schema.types.Timestamp(timezone=True), nullable=False),
        sa.Column("updated_at", pjai.schema.types.Timestamp(timezone=True), nullable=False),
        sa.Column("deleted_at", pjai.schema.types.Timestamp(timezone=True), nullable=True),
        sa.CheckConstraint(
            "time_from IS NULL OR time_to IS NULL OR time_from <= time_to",
            name=op.f("ck_bookmarks_time_range"),
        ),
        sa.ForeignKeyConstraint(
            ["persona_id"], ["personas.id"], name=op.f("fk_bookmarks_persona_id_personas")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bookmarks")),
    )
    with op.batch_alter_table("bookmarks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_bookmarks_persona_id_name"), ["persona_id", "name"], unique=False
        )

    op.create_table(
        "conversations",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("persona_id", sa.String(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("message_count", sa.Integer(), nullable=False),
        sa.Column("started_at", pjai.schema.types.Timestamp(timezone=True), nullable=False),
        sa.Column("created_at", pjai.schema.types.Timestamp(timezone=True), nullable=False),
        sa.Column("updated_at", pjai.schema.types.Timestamp(timezone=True), nullable=False),
        sa.CheckConstraint("message_count >= 0", name=op.f("ck_conversations_message_count")),
        sa.ForeignKeyConstraint(
            ["persona_id"], ["personas.id"], name=op.f("fk_conversations_persona_id_personas")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
    )
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_conversations_persona_id_started_at"),
            ["persona_id", "started_at"],
            unique=False,
        )

    op.create_table(
        "memories",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("persona_id", sa.String(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("content", pjai.schema.types.CompressibleText(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("tags", pjai.schema.types.JsonDocument(), nullable=False),
        sa.Column("importance", sa.Float(), nullable=False),
        sa.Column("tier", sa.String(), nullable=False),
        sa.Column("access_count", sa.Integer(), nullable=False),
        sa.Column("last_accessed_at", pjai.schema.types.Timestamp(timezone=True), nullable=True),
        sa.Column("occurred_at", pjai.schema.types.Timestamp(timezone=True), nullable=False),
        sa.Column("created_at", pjai.schema.types.Timestamp(timezone=True), nullable=False),
        sa.Column("updated_at", pjai.schema.types.Timestamp(timezone=True), nullable=False),
        sa.Column("deleted_at", pjai.schema.types.Timestamp(timezone=True), nullable=True),
        sa.Column("archived_at", pjai.schema.types.Timestamp(timezone=True), nullable=True),
        sa.CheckConstraint("tier IN ('hot', 'warm', 'cold')", name=op.f("ck_memories_tier")),
        sa.CheckConstraint("access_count >= 0", name=op.f("ck_memories_access_count")),
        sa.CheckConstraint(
            "importance >= 0 AND importance <= 1", name=op.f("ck_memories_importance_range")
        ),
        sa.ForeignKeyConstraint(
            ["persona_id"], ["personas.id"], name=op.f("fk_memories_persona_id_personas")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memories")),
    )
    with op.batch_alter_table("memories", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_memories_persona_id_created_at"),
            ["persona_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_memories_persona_id_occurred_at"),
            ["persona_id", "occurred_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_memories_persona_id_tier_importance"),
            ["persona_id", "tier", "importance"],
            unique=False,
        )

    op.create_table(
        "conversation_messages",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("conversation_id", sa.String(), nullable=False),
        sa.Column("persona_id", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("sent_at", pjai.schema.types.Timestamp(timezone=True), nullable=False),
        sa.Column("created_at", pjai.schema.types.Timestamp(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_messages_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["persona_id"],
            ["personas.id"],
            name=op.f("fk_conversation_messages_persona_id_personas"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_messages")),
    )
    with op.batch_alter_table("conversation_messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_conversation_messages_conversation_id_sent_at"),
            ["conversation_id", "sent_at"],
            unique=False,
        )

    op.create_table(
        "memory_links",
        sa.Column("source_id", sa.String(), nullable=False),
        sa.Column("target_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("persona_id", sa.String(), nullable=False),
        sa.Column("strength", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("decay_rate", sa.Float(), nullable=False),
        sa.Column("created_at", pjai.schema.types.Timestamp(timezone=True), nullable=False),
        sa.Column("updated_at", pjai.schema.types.Timestamp(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('references', 'similar', 'related', 'causal', 'temporal')",
            name=op.f("ck_memory_links_kind"),
        ),
        sa.CheckConstraint(
            "confidence >= 0 AND confidence <= 1", name=op.f("ck_memory_links_confidence_range")
        ),
        sa.CheckConstraint("decay_rate >= 0", name=op.f("ck_memory_links_decay_rate")),
        sa.CheckConstraint("source_id != target_id", name=op.f("ck_memory_links_not_self")),
        sa.CheckConstraint(
            "strength >= 0 AND strength <= 1", name=op.f("ck_memory_links_strength_range")
        ),
        sa.ForeignKeyConstraint(
            ["persona_id"], ["personas.id"], name=op.f("fk_memory_links_persona_id_personas")
        ),
        sa.ForeignKeyConstraint(
            ["source_id"], ["memories.id"], name=op.f("fk_memory_links_source_id_memories")
        ),
        sa.ForeignKeyConstraint(
            ["target_id"], ["memories.id"], name=op.f("fk_memory_links_target_id_memories")
        ),
        sa.PrimaryKeyConstraint("source_id", "target_id", "kind", name=op.f("pk_memory_links")),
    )
    with op.batch_alter_table("memory_links", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_memory_links_persona_id_source_id"),
            ["persona_id", "source_id"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_memory_links_target_id"), ["target_id"], unique=False)

    op.create_table(
        "pjai_checkpoint",
        sa.Column("projection", sa.String(), nullable=False),
        sa.Column("global_seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", pjai.schema.types.Timestamp(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("projection", name=op.f("pk_pjai_checkpoint")),
    )
    op.create_table(
        "pjai_journal",
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("global_seq", sa.BigInteger(), nullable=False),
        sa.Column("client_seq", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("parent_global_seq", sa.BigInteger(), nullable=False),
        sa.Column("parent_client_seq", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("args", sa.Text(), nullable=False),
        sa.Column("client_id", sa.String(), nullable=False),
        sa.Column("session_id", sa.String(), nullable=False),
        sa.Column("at", pjai.schema.types.Timestamp(timezone=True), nullable=False),
        sa.Column("persona_id", sa.String(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("recorded_at", pjai.schema.types.Timestamp(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_pjai_journal")),
    )
    with op.batch_alter_table("pjai_journal", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pjai_journal_global_seq"), ["global_seq"], unique=True)
        batch_op.create_index(
            batch_op.f("ix_pjai_journal_persona_id"), ["persona_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("pjai_journal", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pjai_journal_persona_id"))
        batch_op.drop_index(batch_op.f("ix_pjai_journal_global_seq"))

    op.drop_table("pjai_journal")
    op.drop_table("pjai_checkpoint")
    with op.batch_alter_table("memory_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_memory_links_target_id"))
        batch_op.drop_index(batch_op.f("ix_memory_links_persona_id_source_id"))

    op.drop_table("memory_links")
    with op.batch_alter_table("conversation_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversation_messages_conversation_id_sent_at"))

    op.drop_table("conversation_messages")
    with op.batch_alter_table("memories", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_memories_persona_id_tier_importance"))
        batch_op.drop_index(batch_op.f("ix_memories_persona_id_occurred_at"))
        batch_op.drop_index(batch_op.f("ix_memories_persona_id_created_at"))

    op.drop_table("memories")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversations_persona_id_started_at"))

    op.drop_table("conversations")
    with op.batch_alter_table("bookmarks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bookmarks_persona_id_name"))

    op.drop_table("bookmarks")
    op.drop_table("personas")
