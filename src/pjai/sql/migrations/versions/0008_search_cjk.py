"""PostgreSQL's search documents cut Chinese, Japanese and Korean text into characters,
as the store's index does, so that a word inside a sentence is found (pjai.schema.search).

The document function is replaced and the documents of the memories holding such text
are computed again. SQLite: nothing. Downgrading keeps the new function: its documents
are ordinary ``tsvector`` values, which 0007's queries read as well.
"""

from __future__ import annotations

from alembic import op

from pjai.schema.search import POSTGRESQL_CJK_UPDATE

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRESQL_CJK_UPDATE:
            op.execute(statement)


def downgrade() -> None:
    """Nothing to undo (see the module's docstring)."""
