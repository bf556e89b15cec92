"""An index of memories by persona, deletion and time: a persona's live memories are
counted, paged newest first and bucketed by time from the index alone.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 09:10:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

NAME = "ix_memories_persona_id_deleted_at_occurred_at"


def upgrade() -> None:
    op.create_index(NAME, "memories", ["persona_id", "deleted_at", "occurred_at"])


def downgrade() -> None:
    op.drop_index(NAME, table_name="memories")
