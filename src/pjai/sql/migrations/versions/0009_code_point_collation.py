"""Text columns compare and sort by code point on PostgreSQL, as on SQLite and in the
store: every text column of PJai's tables gets the collation ``"C"``.

Before, they had the database's collation, often a language's (``en_US.UTF-8``, ICU
``en-US``), under which ``alice`` sorts before ``Bob_1`` and ``Bob%2`` before ``Bob_1``:
names came out in another order than with the store on, and lists read from several
shards were merged out of order. The values are not rewritten; the indexes on these
columns are built again. The search document's trigger names columns changed here, so
it is dropped and made again around the change. Downgrading gives the columns the
database's collation back. SQLite: nothing (it compares text by code point).
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"

COLUMNS = {
    "personas": {
        "id": "VARCHAR",
        "name": "TEXT",
        "description": "TEXT",
        "communication_style": "TEXT",
        "memory_retention_action": "VARCHAR",
    },
    "memories": {
        "id": "VARCHAR",
        "persona_id": "VARCHAR",
        "type": "VARCHAR",
        "name": "TEXT",
        "content": "TEXT",
        "summary": "TEXT",
        "tier": "VARCHAR",
    },
    "conversations": {"id": "VARCHAR", "persona_id": "VARCHAR", "title": "TEXT"},
    "conversation_messages": {
        "id": "VARCHAR",
        "conversation_id": "VARCHAR",
        "persona_id": "VARCHAR",
        "role": "VARCHAR",
        "content": "TEXT",
    },
    "memory_links": {
        "source_id": "VARCHAR",
        "target_id": "VARCHAR",
        "kind": "VARCHAR",
        "persona_id": "VARCHAR",
    },
    "bookmarks": {
        "id": "VARCHAR",
        "persona_id": "VARCHAR",
        "name": "TEXT",
        "description": "TEXT",
        "colour": "VARCHAR",
    },
    "consents": {"persona_id": "VARCHAR", "purpose": "VARCHAR", "version": "VARCHAR"},
    "pjai_journal": {
        "event_id": "VARCHAR",
        "name": "VARCHAR",
        "args": "TEXT",
        "client_id": "VARCHAR",
        "session_id": "VARCHAR",
        "persona_id": "VARCHAR",
        "status": "VARCHAR",
        "error": "TEXT",
    },
    "pjai_checkpoint": {"projection": "VARCHAR"},
}
"""Every text column of the tables as 0008 left them, with its PostgreSQL type."""

_TRIGGER = "memories_search_document"
_CREATE_TRIGGER = (
    f"CREATE TRIGGER {_TRIGGER} BEFORE INSERT OR UPDATE OF name, content, summary, tags "
    "ON memories FOR EACH ROW EXECUTE FUNCTION pjai_memories_search_document()"
)
"""The search document's trigger as 0007 made it: it depends on columns changed here."""


def upgrade() -> None:
    _collate('"C"')


def downgrade() -> None:
    _collate('"default"')


def _collate(collation: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP TRIGGER {_TRIGGER} ON memories")
    for table, columns in COLUMNS.items():
        changes = ", ".join(
            f"ALTER COLUMN {name} TYPE {kind} COLLATE {collation}" for name, kind in columns.items()
        )
        op.execute(f"ALTER TABLE {table} {changes}")
    op.execute(_CREATE_TRIGGER)
