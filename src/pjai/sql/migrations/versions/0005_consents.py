"""Consent records: the latest consent of each persona's data subject per purpose."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pjai.schema.types

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "consents",
        sa.Column("persona_id", sa.String(), nullable=False),
        sa.Column("purpose", sa.String(), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("recorded_at", pjai.schema.types.Timestamp(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["persona_id"], ["personas.id"], name=op.f("fk_consents_persona_id_personas")
        ),
        sa.PrimaryKeyConstraint("persona_id", "purpose", name=op.f("pk_consents")),
    )


def downgrade() -> None:
    op.drop_table("consents")
