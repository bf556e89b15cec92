"""The apsw boundary: opening store files, and the one place apsw errors are translated."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, cast

import apsw

from pjai.errors import QueryError, StoreCorruptError, StoreError
from pjai.schema.render import sqlite_functions
from pjai.schema.types import to_iso

__all__ = [
    "ENVIRONMENT_ERRORS",
    "Durability",
    "adapt",
    "check_file",
    "connect",
    "file_size",
    "translate_errors",
    "use_wal",
]

Durability = Literal["normal", "full"]
"""``normal``: WAL with synchronous=NORMAL, commits survive a process crash.
``full``: synchronous=FULL, every commit is fsynced and survives power loss."""

ENVIRONMENT_ERRORS: tuple[type[BaseException], ...] = (
    apsw.FullError,
    apsw.IOError,
    apsw.BusyError,
    apsw.LockedError,
    apsw.CorruptError,
    apsw.NotADBError,
    apsw.ReadOnlyError,
    apsw.CantOpenError,
    apsw.NoMemError,
    apsw.InterruptError,
    MemoryError,
)
"""Failures of the machine or the file, not of the event being applied: they stop the
work instead of marking the event as refused."""

_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 5_000
WAL_CHECKPOINT_PAGES = 10_000


def check_file(path: Path) -> None:
    """Refuse a file that is empty, not SQLite, or shorter than its header says."""
    size = path.stat().st_size
    if size == 0:
        raise StoreCorruptError(
            f"store file {path} is empty; it may have been truncated. "
            "Restore it from a backup or move it away to start a new store."
        )
    with path.open("rb") as file:
        header = file.read(100)
    if len(header) < 100 or not header.startswith(_HEADER):
        raise StoreCorruptError(f"store file {path} is not an SQLite database")
    page_size = struct.unpack(">H", header[16:18])[0]
    page_size = 65_536 if page_size == 1 else page_size
    change_counter, page_count = struct.unpack(">II", header[24:32])
    version_valid_for = struct.unpack(">I", header[92:96])[0]
    # The in-header size is reliable only when it was written with the change counter.
    if version_valid_for == change_counter and size < page_count * page_size:
        raise StoreCorruptError(
            f"store file {path} is truncated: {size} bytes, its header says "
            f"{page_count * page_size}. Restore it from a backup; nothing was changed."
        )


def connect(path: Path | None, durability: Durability) -> apsw.Connection:
    """Open (or create) a store database; ``None`` opens a private in-memory one."""
    if path is not None and path.exists():
        check_file(path)
    with translate_errors(f"opening store file {path}"):
        conn = apsw.Connection(str(path) if path is not None else ":memory:")
        conn.set_busy_timeout(BUSY_TIMEOUT_MS)
        synchronous = "FULL" if durability == "full" else "NORMAL"
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        for name, function in sqlite_functions().items():
            conn.create_scalar_function(name, cast(Any, function), 1, deterministic=True)
        # Checkpoint every ~40 MB of WAL instead of 4 MB: index pages that many
        # small commits dirty again and again are copied to the database once.
        conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        conn.execute(f"PRAGMA journal_size_limit={64 * 1024 * 1024}")
        # Touch the schema now so that a damaged file fails here, not on first use.
        conn.execute("SELECT count(*) FROM sqlite_schema").fetchall()
    return conn


def use_wal(conn: apsw.Connection) -> None:
    """Switch a file database to write-ahead logging (a persistent setting)."""
    mode = conn.execute("PRAGMA journal_mode=WAL").get
    if str(mode).lower() != "wal":
        raise StoreError(f"cannot switch the store to WAL mode (it is in {mode!r} mode)")


def adapt(value: Any) -> Any:
    """A Python value as SQLite stores it (timestamps as PJai's ISO text)."""
    if isinstance(value, datetime):
        return to_iso(value)
    return value


@contextmanager
def translate_errors(doing: str) -> Iterator[None]:
    """Turn apsw errors raised while ``doing`` into :mod:`pjai.errors` exceptions."""
    try:
        yield
    except (apsw.CorruptError, apsw.NotADBError) as exc:
        raise StoreCorruptError(f"{doing}: the file is corrupt ({exc}); nothing was reset") from exc
    except apsw.ReadOnlyError as exc:
        raise StoreError(f"{doing}: the store is read-only ({exc})") from exc
    except (apsw.SQLError, apsw.BindingsError, apsw.MismatchError) as exc:
        raise QueryError(f"{doing}: {exc}") from exc
    except apsw.BusyError as exc:
        raise StoreError(f"{doing}: the store is locked by another writer ({exc})") from exc
    except apsw.FullError as exc:
        raise StoreError(f"{doing}: the disk is full ({exc})") from exc
    except apsw.CantOpenError as exc:
        raise StoreError(f"{doing}: cannot open the file ({exc})") from exc
    except apsw.IOError as exc:
        raise StoreError(f"{doing}: I/O error ({exc})") from exc


def file_size(path: Path | None) -> int:
    """Bytes on disk of a store file and its WAL (0 for an in-memory store)."""
    if path is None:
        return 0
    return sum(os.path.getsize(p) for p in (path, Path(f"{path}-wal")) if os.path.exists(p))
