"""Memory content is TEXT on PostgreSQL, like every other text column (0001 made VARCHAR).

SQLite declares the column ZTEXT, unchanged. On PostgreSQL the two types store the
same values and the change rewrites no rows.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.alter_column(
        "memories", "content", type_=sa.Text(), existing_type=sa.String(), existing_nullable=False
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.alter_column(
        "memories", "content", type_=sa.String(), existing_type=sa.Text(), existing_nullable=False
    )
