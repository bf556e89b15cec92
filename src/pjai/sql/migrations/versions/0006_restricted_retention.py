"""Personas get ``memory_restricted_retention_days``: how long memories tagged
``restricted`` are kept (retention per data class). Existing personas have none.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.add_column("personas", sa.Column("memory_restricted_retention_days", sa.Integer()))


def downgrade() -> None:
    op.drop_column("personas", "memory_restricted_retention_days")  # SQLite 3.35 drops in place
