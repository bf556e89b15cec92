"""Memories get ``pinned``: the user chose its tier, so the optimizer leaves it there.

Existing memories are not pinned, as replaying their events gives. The column keeps its
default (false): SQLite adds a NOT NULL column only with one, and cannot drop a
column's default without rebuilding the table, which its foreign keys (links refer to
memories) forbid inside a migration's transaction.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.add_column(
        "memories",
        sa.Column("pinned", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("memories", "pinned")  # SQLite 3.35 drops a column in place
