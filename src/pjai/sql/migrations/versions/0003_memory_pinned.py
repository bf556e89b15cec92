"""Memories get ``pinned``: the user chose its tier, so the optimizer leaves it there.

Existing memories are not pinned, as replaying their events gives. The column has no
default in PJai's tables (the materializers write every column), so the default that
adding a NOT NULL column needs is dropped again; SQLite cannot drop a column default,
so there the table is rebuilt without it, as it stands at this revision.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pjai.schema.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _memories(pinned_default: bool) -> sa.Table:
    """The memories table at this revision, with ``pinned`` defaulting to false or not."""
    when = pjai.schema.types.Timestamp(timezone=True)
    default = sa.false() if pinned_default else None
    return sa.Table(
        "memories",
        sa.MetaData(),
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
        sa.Column("last_accessed_at", when, nullable=True),
        sa.Column("occurred_at", when, nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.Column("updated_at", when, nullable=False),
        sa.Column("deleted_at", when, nullable=True),
        sa.Column("archived_at", when, nullable=True),
        sa.Column("pinned", sa.Boolean(), nullable=False, server_default=default),
        sa.CheckConstraint("tier IN ('hot', 'warm', 'cold')", name="ck_memories_tier"),
        sa.CheckConstraint("access_count >= 0", name="ck_memories_access_count"),
        sa.CheckConstraint(
            "importance >= 0 AND importance <= 1", name="ck_memories_importance_range"
        ),
        sa.ForeignKeyConstraint(
            ["persona_id"], ["personas.id"], name="fk_memories_persona_id_personas"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_memories"),
        sa.Index("ix_memories_persona_id_created_at", "persona_id", "created_at"),
        sa.Index("ix_memories_persona_id_occurred_at", "persona_id", "occurred_at"),
        sa.Index("ix_memories_persona_id_tier_importance", "persona_id", "tier", "importance"),
    )


def upgrade() -> None:
    op.add_column(
        "memories",
        sa.Column("pinned", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("memories", "pinned", server_default=None)
        return
    # Rows referring to memories (links) are checked at commit, when the rebuilt table
    # holds every row again.
    op.execute("PRAGMA defer_foreign_keys = ON")
    with op.batch_alter_table("memories", copy_from=_memories(True), recreate="always") as batch:
        batch.alter_column(
            "pinned", server_default=None, existing_type=sa.Boolean(), existing_nullable=False
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_column("memories", "pinned")
        return
    op.execute("PRAGMA defer_foreign_keys = ON")
    with op.batch_alter_table("memories", copy_from=_memories(False), recreate="always") as batch:
        batch.drop_column("pinned")
