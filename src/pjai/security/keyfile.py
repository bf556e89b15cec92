"""The key ring's file: its tables, and how it is opened.

A rollback journal (no write-ahead log keeping old pages) and ``secure_delete``
(deleted bytes overwritten in the file): a key deleted from it is gone from the file.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import apsw

__all__ = ["FORMAT", "READS", "SCHEMA", "backup", "connect", "data_key_aad", "now", "upgrade"]

FORMAT = "2"
"""The key ring file's format: ``2`` since data keys have lineages. A PJai from before
reads format ``1`` only and refuses a ring of this one, rather than fail to open its
keys, make keys without a lineage and erase every lineage of an id."""

READS = ("1", "2")
"""The formats this PJai opens: ``1`` (made before lineages) is upgraded as it opens."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS wraps (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('passphrase', 'key file', 'recovery code')),
    salt BLOB,
    params TEXT,
    nonce BLOB NOT NULL,
    wrapped BLOB NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS data_keys (
    id TEXT PRIMARY KEY,
    scope TEXT NOT NULL,
    nonce BLOB NOT NULL,
    wrapped BLOB NOT NULL,
    current INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    lineage TEXT
);
CREATE INDEX IF NOT EXISTS data_keys_scope ON data_keys (scope, current);
CREATE TABLE IF NOT EXISTS erased (
    key_id TEXT PRIMARY KEY,
    scope TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    erased_at TEXT NOT NULL,
    lineage TEXT
);
CREATE TABLE IF NOT EXISTS retired (id TEXT PRIMARY KEY, retired_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS unproven (event_id TEXT PRIMARY KEY, taken_at TEXT NOT NULL);
"""
"""``retired``: passphrase wraps replaced here (a new passphrase), to be deleted from
the sync server's keys channel so that the old passphrase no longer joins a device.

``unproven``: the erasures with no proof this device applied before it checked proofs
(:meth:`pjai.security.keys.KeyRing.take_unproven`), which it takes still.

``lineage``: the id of the first data key of the persona a key was made for (made as
the persona was created; its own id for that first key), kept by the keys rotated
from it; ``NULL`` for a key made before keys had lineages, or made for a persona that
was created without one (before encryption was on). An erasure destroys the lineages
of the persona it erases, never one started by a new persona given the same id
(:meth:`pjai.security.keys.KeyRing.erase`)."""


def upgrade(conn: apsw.Connection) -> None:
    """Give a ring made by an older PJai (of a format in :data:`READS`) the tables and
    columns added since (its keys have no lineage), and this format."""
    conn.execute(SCHEMA)
    if _lacking(conn) or _format(conn) != FORMAT:
        conn.execute("BEGIN IMMEDIATE")  # of processes opening it at once, one adds them
        try:
            for table in _lacking(conn):
                conn.execute(f"ALTER TABLE {table} ADD COLUMN lineage TEXT")
            conn.execute("UPDATE meta SET value = ? WHERE name = 'format'", (FORMAT,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _format(conn: apsw.Connection) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE name = 'format'").fetchone()
    return None if row is None else str(row[0])


def _lacking(conn: apsw.Connection) -> list[str]:
    """The tables of the ring at ``conn`` without a ``lineage`` column."""
    return [
        table
        for table in ("data_keys", "erased")
        if "lineage" not in {str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})")}
    ]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def connect(path: Path) -> apsw.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = apsw.Connection(str(path))
    conn.setbusytimeout(5_000)
    # A rollback journal (no WAL keeping old pages) and deleted bytes overwritten.
    conn.execute("PRAGMA journal_mode=DELETE; PRAGMA secure_delete=ON; PRAGMA synchronous=FULL")
    if os.name == "posix":
        os.chmod(path, 0o600)
    return conn


def backup(source: Path, destination: Path) -> None:
    """Copy the key ring file ``source``, as of now and while in use, to the new file
    ``destination`` (mode 600). The copy is as locked as the ring: it opens with the
    same passphrase, key file or recovery code."""
    copy, original = connect(destination), apsw.Connection(str(source))
    try:
        original.setbusytimeout(5_000)
        with copy.backup("main", original, "main") as step:
            step.step()
    finally:
        copy.close()
        original.close()


def data_key_aad(key_id: str, scope: str, lineage: str | None = None) -> bytes:
    """What a wrapped data key is bound to: its id, its scope, and its lineage if it has
    one (a key moved to another scope or lineage does not open)."""
    aad = b"pjai data key\x00" + key_id.encode() + b"\x00" + scope.encode()
    return aad if lineage is None else aad + b"\x00lineage\x00" + lineage.encode()
