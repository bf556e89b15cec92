"""Indexes for what the web app reads most:

- memories by persona, deletion and time: a persona's live memories are counted, paged
  newest first and bucketed by time from the index alone;
- memory health's index (persona, tier, importance, deletion, creation, last access)
  replaces the one by persona, tier and importance, which is its start.
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"

LIVE = "ix_memories_persona_id_deleted_at_occurred_at"
HEALTH = "ix_memories_health"
OLD = "ix_memories_persona_id_tier_importance"


def upgrade() -> None:
    op.create_index(LIVE, "memories", ["persona_id", "deleted_at", "occurred_at"])
    op.create_index(
        HEALTH,
        "memories",
        ["persona_id", "tier", "importance", "deleted_at", "created_at", "last_accessed_at"],
    )
    op.drop_index(OLD, table_name="memories")


def downgrade() -> None:
    op.create_index(OLD, "memories", ["persona_id", "tier", "importance"])
    op.drop_index(HEALTH, table_name="memories")
    op.drop_index(LIVE, table_name="memories")
