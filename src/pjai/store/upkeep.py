"""Looking after a store file: an online backup, compaction, a digest of its state."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import apsw
import msgspec
from sqlalchemy import Table

from pjai.errors import StoreError

__all__ = ["backup", "compact", "state_hash", "written_whole"]


@contextmanager
def written_whole(target: Path) -> Iterator[Path]:
    """A file beside ``target`` to write, moved to ``target`` when the block ends
    and removed if it raises: a failure leaves no partial file. ``target`` must be new."""
    if target.exists():
        raise StoreError(f"{target} exists; a backup goes to a new file")
    partial = target.with_name(target.name + ".partial")
    try:
        yield partial
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def backup(conn: apsw.Connection, destination: Path) -> None:
    """Copy the database of ``conn``, as of now, to the new file ``destination``
    (SQLite's online backup: one consistent state while others go on writing)."""
    copy = apsw.Connection(str(destination))
    try:
        with copy.backup("main", conn, "main") as step:
            step.step(-1)
    finally:
        copy.close()


def compact(conn: apsw.Connection, *, in_memory: bool, wait_s: float) -> bool:
    """Merge each full-text index (its deleted words dropped), vacuum the file and
    empty its write-ahead log; whether the log was emptied within ``wait_s`` (other
    connections reading an older state hold it)."""
    fts = conn.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table' "
        "AND sql LIKE 'CREATE VIRTUAL TABLE % USING fts5%'"
    ).fetchall()
    for (name,) in fts:
        quoted = '"' + str(name).replace('"', '""') + '"'
        conn.execute(f"INSERT INTO {quoted}({quoted}) VALUES ('optimize')")
    conn.execute("VACUUM")
    if in_memory:
        return True
    deadline = time.monotonic() + wait_s
    while True:
        found = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if found is not None and not found[0]:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def state_hash(conn: apsw.Connection, tables: Mapping[str, Table]) -> str:
    """A digest of every table's content in ``tables``, equal for equal states."""
    digest = hashlib.sha256()
    for name, table in sorted(tables.items()):
        keys = ", ".join(f'"{c.name}"' for c in table.primary_key.columns) or "rowid"
        digest.update(name.encode())
        for row in conn.execute(f'SELECT * FROM "{name}" ORDER BY {keys}'):
            digest.update(msgspec.json.encode(row))
    return digest.hexdigest()
