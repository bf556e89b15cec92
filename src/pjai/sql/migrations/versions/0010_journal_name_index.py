"""The journal gets an index by event name and position: the events of a few names (the
erasures, read each time a data directory opens with keys of a persona it holds no row
of, and by a legacy import) are found from it, in order, instead of by reading the whole
journal, which took a time that grew with it (about 0.1 s at a million events on
PostgreSQL and SQLite). Building it reads the journal once.
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"

NAME = "ix_pjai_journal_name_global_seq"


def upgrade() -> None:
    op.create_index(NAME, "pjai_journal", ["name", "global_seq"])


def downgrade() -> None:
    op.drop_index(NAME, table_name="pjai_journal")
