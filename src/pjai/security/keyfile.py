"""The key ring's file: its tables, and how it is opened.

A rollback journal (no write-ahead log keeping old pages) and ``secure_delete``
(deleted bytes overwritten in the file): a key deleted from it is gone from the file.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import apsw

__all__ = ["FORMAT", "SCHEMA", "backup", "connect", "data_key_aad", "now"]

FORMAT = "1"
"""The key ring file's format."""

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
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS data_keys_scope ON data_keys (scope, current);
CREATE TABLE IF NOT EXISTS erased (
    key_id TEXT PRIMARY KEY,
    scope TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    erased_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS retired (id TEXT PRIMARY KEY, retired_at TEXT NOT NULL);
"""
"""``retired``: passphrase wraps replaced here (a new passphrase), to be deleted from
the sync server's keys channel so that the old passphrase no longer joins a device."""


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


def data_key_aad(key_id: str, scope: str) -> bytes:
    return b"pjai data key\x00" + key_id.encode() + b"\x00" + scope.encode()
