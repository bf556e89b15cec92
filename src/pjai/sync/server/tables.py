"""The sync server's database: its tables, their creation, and transactions on them.

One database holds a server's event log (``pjai_sync_meta``, ``pjai_sync_heads``,
``pjai_sync_events``), its access tokens (``pjai_sync_tokens``) and the audit trail of
changes to them (``pjai_sync_audit``, append-only: the database refuses to update or
delete its rows). Driver errors become PJai errors here and in
:class:`~pjai.sync.server.sqllog.SqlLog`, through :func:`pjai.sql.backend.backend_for`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from pjai.sql.backend import backend_for

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "SCHEMA_LOCK",
    "audit",
    "create_tables",
    "ensure_tables",
    "events",
    "heads",
    "meta",
    "metadata",
    "select_fields",
    "tokens",
    "transaction",
]

metadata = sa.MetaData()

meta = sa.Table(
    "pjai_sync_meta",
    metadata,
    sa.Column("key", sa.String, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

heads = sa.Table(
    "pjai_sync_heads",
    metadata,
    sa.Column("store_id", sa.String, primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
    # The bytes of the store's records, as logged: what its quota is checked against.
    sa.Column("bytes", sa.BigInteger, nullable=False, server_default="0"),
)

events = sa.Table(
    "pjai_sync_events",
    metadata,
    sa.Column("store_id", sa.String, primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True),
    sa.Column("event_id", sa.String, nullable=False),
    # The record exactly as pushed (msgspec JSON), so pullers get it byte for byte.
    sa.Column("record", sa.LargeBinary, nullable=False),
    sa.UniqueConstraint("store_id", "event_id"),
)

keys = sa.Table(
    "pjai_sync_keys",
    metadata,
    # Keys a store's devices share, wrapped (the server cannot open them); a deleted
    # key keeps its row, without its blob, so that devices learn to delete theirs.
    sa.Column("store_id", sa.String, primary_key=True),
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("scope", sa.String, nullable=False),
    sa.Column("blob", sa.Text),
    # A deletion's proof: made with the store key, which the server does not have, so
    # that devices carry out only the deletions another device really made.
    sa.Column("proof", sa.String),
    sa.Column("created_at", sa.String, nullable=False),
    sa.Column("deleted_at", sa.String),
    # The SHA-256 of the proof that deletes the key, given as it was put: a deletion
    # whose proof does not hash to it is refused (none: a key put by an older PJai).
    sa.Column("deletion_check", sa.String),
)

tokens = sa.Table(
    "pjai_sync_tokens",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("digest", sa.String, nullable=False, unique=True),  # sha256 of the secret
    sa.Column("store_id", sa.String, nullable=False),  # or "*": every store
    sa.Column("role", sa.String, nullable=False),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("created_at", sa.String, nullable=False),
    sa.Column("revoked_at", sa.String),
    sa.Column("expires_at", sa.String),  # none: until revoked
    sa.CheckConstraint("role IN ('read', 'write', 'admin')", name="role"),
)

audit = sa.Table(
    "pjai_sync_audit",
    metadata,
    # SQLite numbers an INTEGER PRIMARY KEY itself; PostgreSQL gets a BIGSERIAL.
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("at", sa.String, nullable=False),
    sa.Column("action", sa.String, nullable=False),
    sa.Column("token_id", sa.String, nullable=False),
    sa.Column("token_label", sa.Text, nullable=False),
    sa.Column("store_id", sa.String, nullable=False),
    sa.Column("role", sa.String, nullable=False),
    sa.Column("actor", sa.Text),  # who made the change, when known
)

_REFUSE = "the audit trail of the sync server is append-only"

_APPEND_ONLY = {
    "sqlite": [
        f"CREATE TRIGGER pjai_sync_audit_no_{change} BEFORE {change.upper()} ON pjai_sync_audit"
        f" BEGIN SELECT RAISE(ABORT, '{_REFUSE}'); END"
        for change in ("update", "delete")
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION pjai_sync_audit_refuse() RETURNS trigger"
        f" LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{_REFUSE}'; END $$",
        "CREATE TRIGGER pjai_sync_audit_append_only BEFORE UPDATE OR DELETE"
        " ON pjai_sync_audit FOR EACH ROW EXECUTE FUNCTION pjai_sync_audit_refuse()",
    ],
}
"""Triggers that refuse to change or delete audit entries, made with the table."""


@sa.event.listens_for(audit, "after_create")
def _append_only(_table: sa.Table, conn: sa.Connection, **_: object) -> None:
    for statement in _APPEND_ONLY[conn.dialect.name]:
        conn.exec_driver_sql(statement)


SCHEMA_LOCK = 0x706A6169_73796E63  # "pjaisync"
"""PostgreSQL advisory lock key held while a process creates the sync tables."""


def create_tables(conn: sa.Connection, only: Sequence[sa.Table] | None = None) -> None:
    """Create the tables missing in ``conn``'s database (``only`` those), inside its
    transaction."""
    if conn.dialect.name == "postgresql":  # servers starting together: one at a time
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(SCHEMA_LOCK)))
    metadata.create_all(conn, tables=only)
    # Tables made by an older PJai lack the columns added since.
    inspector = sa.inspect(conn)
    for table, column, kind, filled in _ADDED:
        if only is not None and table not in only:
            continue
        if column not in {c["name"] for c in inspector.get_columns(table.name)}:
            conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {column} {kind}")
            if filled is not None:
                conn.exec_driver_sql(filled)


_ADDED = (
    (tokens, "expires_at", "VARCHAR", None),
    (keys, "deletion_check", "VARCHAR", None),
    (
        heads,
        "bytes",
        "BIGINT NOT NULL DEFAULT 0",
        "UPDATE pjai_sync_heads SET bytes = COALESCE((SELECT sum(length(e.record))"
        " FROM pjai_sync_events AS e WHERE e.store_id = pjai_sync_heads.store_id), 0)",
    ),
)
"""The columns added since the first tables: table, column, type, and the statement that
fills it in rows made before (none: left empty)."""


def ensure_tables(engine: sa.Engine, only: Sequence[sa.Table] | None = None) -> None:
    """Create the tables missing in ``engine``'s database (``only`` those), in a
    transaction of its own."""
    with transaction(engine, "creating the sync tables", write=True) as conn:
        create_tables(conn, only)


def select_fields(table: sa.Table, record: type[DataclassInstance]) -> sa.Select[Any]:
    """The columns of ``table`` named by ``record``'s fields, in their order: ``record(*row)``
    reads a row."""
    return sa.select(*(table.c[field.name] for field in dataclasses.fields(record)))


@contextmanager
def transaction(engine: sa.Engine, doing: str, *, write: bool = False) -> Iterator[sa.Connection]:
    """A transaction on ``engine`` (SQLite: holding the write lock from the start when
    ``write``); a driver error becomes a PJai error saying what was being done."""
    try:
        with engine.connect() as conn:
            if write:
                conn.execution_options(pjai_begin="IMMEDIATE")
            with conn.begin():
                yield conn
    except sa.exc.DBAPIError as exc:
        raise backend_for(engine).translate(exc, doing) from exc
