"""Memories get a stored text-search document on PostgreSQL: ``search_document``
(``tsvector``), set by a trigger and indexed (GIN), so that keyword search with the
store off reads an index instead of every memory's text (pjai.schema.search).

SQLite: nothing (its SQL primary has no keyword search; the store has FTS5). The
existing memories' documents are computed here, once.
"""

from __future__ import annotations

from alembic import op

from pjai.schema.search import POSTGRESQL_SEARCH_CREATE, POSTGRESQL_SEARCH_DROP

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRESQL_SEARCH_CREATE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRESQL_SEARCH_DROP:
            op.execute(statement)
