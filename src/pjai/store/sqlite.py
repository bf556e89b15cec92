"""The apsw boundary: opening store files, and the one place apsw errors are translated."""

from __future__ import annotations

import os
import struct
import weakref
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, cast

import apsw

from pjai.errors import QueryError, StoreCorruptError, StoreError
from pjai.schema.busy import busy_handler
from pjai.schema.render import SQLITE_TUNING, sqlite_functions
from pjai.schema.types import read_text, to_iso
from pjai.store.damage import problems, read_only

__all__ = [
    "ENVIRONMENT_ERRORS",
    "Durability",
    "adapt",
    "add_functions",
    "check_file",
    "connect",
    "file_size",
    "translate_errors",
    "use_wal",
    "wait_when_busy",
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


def check_file(path: Path) -> None:
    """Refuse a store file that is empty, not SQLite, or missing pages; change nothing.

    The header tells cheaply whether a file looks whole. When it does not and a ``-wal``
    file lies beside it, SQLite decides: a checkpoint stopped by a full disk or a crash
    has written page 1, with the new page count, before the pages after it, which SQLite
    still reads from the ``-wal`` file. Only a file SQLite cannot read is refused.
    """
    size = path.stat().st_size
    if size == 0:
        # SQLite would take it for a new database and delete the -wal file beside it.
        raise StoreCorruptError(
            f"store file {path} is empty; it may have been truncated. Nothing was changed: "
            "`pjai repair --side store` rebuilds it from SQL's journal, or "
            f"{_move_aside(path)}, then restore a backup or let PJai start a new store."
        )
    with path.open("rb") as file:
        header = file.read(100)
    if len(header) < 100 or not header.startswith(_HEADER):
        problem = "is not an SQLite database"
    else:
        expected = _size_in_header(header)
        if expected is None or size >= expected:
            return
        problem = f"is truncated: {size} bytes, its header says {expected}"
    if _wal_bytes(path) > 0:
        unreadable = _unreadable(path)
        if unreadable is None:
            return
        problem += f", and SQLite cannot read it with {path.name}-wal either ({unreadable})"
    raise StoreCorruptError(
        f"store file {path} {problem}. Nothing was changed: `pjai repair --side store` "
        f"rebuilds it from SQL's journal, or {_move_aside(path)} and restore a backup."
    )


def _size_in_header(header: bytes) -> int | None:
    """The database size page 1 records, if it is reliable."""
    page_size = struct.unpack(">H", header[16:18])[0]
    page_size = 65_536 if page_size == 1 else page_size
    change_counter, page_count = struct.unpack(">II", header[24:32])
    version_valid_for = struct.unpack(">I", header[92:96])[0]
    # The in-header size is reliable only when it was written with the change counter.
    if version_valid_for != change_counter:
        return None
    return int(page_count * page_size)


def _unreadable(path: Path) -> str | None:
    """Why SQLite cannot read every page of ``path`` with its -wal file; ``None`` if it can."""
    with translate_errors(f"checking store file {path}"), read_only(path) as conn:
        found = problems(conn, limit=1)
    lines = "\n".join(found).splitlines()
    return "; ".join(line for line in lines if not line.startswith("*** in database")) or None


def _wal_bytes(path: Path) -> int:
    """Bytes in the -wal file beside ``path`` (0 if there is none)."""
    wal = Path(f"{path}-wal")
    return wal.stat().st_size if wal.exists() else 0


def _move_aside(path: Path) -> str:
    """Advice that loses nothing: a -wal file holds commits and belongs with its database."""
    if _wal_bytes(path) > 0:
        return (
            f"move {path.name} aside together with {path.name}-wal, "
            "which may hold its latest commits"
        )
    return f"move {path.name} aside"


def connect(path: Path | None, durability: Durability) -> apsw.Connection:
    """Open (or create) a store database; ``None`` opens a private in-memory one."""
    if path is not None and path.exists():
        check_file(path)
    with translate_errors(f"opening store file {path}"):
        conn = apsw.Connection(str(path) if path is not None else ":memory:")
        wait_when_busy(conn)
        synchronous = "FULL" if durability == "full" else "NORMAL"
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        add_functions(conn)
        for pragma in SQLITE_TUNING:
            conn.execute(pragma)
        # Touch the schema now so that a damaged file fails here, not on first use.
        conn.execute("SELECT count(*) FROM sqlite_schema").fetchall()
    return conn


def wait_when_busy(conn: apsw.Connection, timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
    """Have ``conn`` wait up to ``timeout_ms`` for a lock another connection holds,
    looking again every few milliseconds (:func:`~pjai.schema.busy.busy_handler`: with
    SQLite's own handler, processes committing one after another could starve a waiter
    until it gave up, "locked by another writer")."""
    conn.set_busy_handler(busy_handler(timeout_ms / 1000))


def add_functions(conn: apsw.Connection) -> None:
    """The SQL functions PJai's queries and materializers use."""
    functions = sqlite_functions()
    functions["pjai_text"] = _text_reader(conn)
    for name, function in functions.items():
        conn.create_scalar_function(name, cast(Any, function), 1, deterministic=True)


def _text_reader(conn: apsw.Connection) -> Callable[[Any], Any]:
    """``pjai_text`` for ``conn``: :func:`~pjai.schema.types.read_text`, except that it
    inflates no more than the longest value ``conn`` takes (which SQLite would refuse
    anyway), so that a small blob of zlib data cannot make gigabytes first (a console's
    ``SELECT pjai_text(x'...')``)."""
    owner = weakref.ref(conn)  # the connection holds this function: no cycle

    def pjai_text(value: Any) -> Any:
        live = owner()
        if not isinstance(value, bytes | memoryview) or live is None:
            return read_text(value)
        limit = live.limit(apsw.SQLITE_LIMIT_LENGTH, -1)
        inflater = zlib.decompressobj()
        data = inflater.decompress(value, limit + 1)
        if len(data) > limit:
            raise apsw.TooBigError(f"pjai_text(): the text inflates to more than {limit:,} bytes")
        if not inflater.eof:
            raise zlib.error("Error -5 while decompressing data: incomplete or truncated stream")
        return data.decode()

    return pjai_text


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
        raise StoreCorruptError(
            f"{doing}: the file is corrupt ({exc}); nothing was reset. "
            "`pjai repair --side store` rebuilds it in a new file"
        ) from exc
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
    except UnicodeEncodeError as exc:
        raise QueryError(
            f"{doing}: a value is not valid Unicode text (a lone surrogate at position "
            f"{exc.start}); give text that can be encoded as UTF-8"
        ) from exc
    except UnicodeDecodeError as exc:
        raise StoreCorruptError(
            f"{doing}: a stored text is not valid UTF-8 ({exc.reason} at byte {exc.start}): "
            "the file is damaged; nothing was changed. `pjai doctor` checks it and "
            "`pjai repair --side store` rebuilds it from its log"
        ) from exc


def file_size(path: Path | None) -> int:
    """Bytes on disk of a store file and its WAL (0 for an in-memory store)."""
    if path is None:
        return 0
    return sum(os.path.getsize(p) for p in (path, Path(f"{path}-wal")) if os.path.exists(p))
