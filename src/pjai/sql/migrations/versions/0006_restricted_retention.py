"""Personas get ``memory_restricted_retention_days``: how long memories tagged
``restricted`` are kept (retention per data class). Existing personas have none.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 13:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("personas", sa.Column("memory_restricted_retention_days", sa.Integer()))


def downgrade() -> None:
    op.drop_column("personas", "memory_restricted_retention_days")  # SQLite 3.35 drops in place
