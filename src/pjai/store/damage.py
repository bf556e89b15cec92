"""Damage in a store file: finding it, and salvaging what the file still holds.

SQLite notices a damaged page only when a statement reads it, and a text value whose
bytes are not UTF-8 only when a row is read back. :func:`problems` has SQLite check
every page (``PRAGMA quick_check``); :func:`unreadable_rows` names the rows of a table
whose text cannot be read; :func:`salvage` reads a damaged file's event log row by row,
by rowid (the log's own pages, no index), keeping what reads whole and in order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import apsw
import msgspec

from pjai.schema.records import EventRecord, EventStatus, LogEntry, Position
from pjai.schema.types import from_iso

__all__ = [
    "Salvage",
    "log_break",
    "problems",
    "read_only",
    "salvage",
    "unreadable_rows",
]

LISTED = 20
"""How many problems or rows a report names."""


@contextmanager
def read_only(path: Path, *, busy_timeout_ms: int = 0) -> Iterator[apsw.Connection]:
    """A connection to ``path`` that only reads and never checkpoints when it closes:
    looking at a file never changes it. It waits up to ``busy_timeout_ms`` for a lock
    another connection holds (a checkpoint)."""
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        conn.config(apsw.SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1)
        conn.set_busy_timeout(busy_timeout_ms)
        yield conn
    finally:
        conn.close()


def problems(conn: apsw.Connection, limit: int = LISTED) -> list[str]:
    """What SQLite finds wrong with the store file's pages, or, the pages being sound,
    where the event log breaks (``[]``: nothing)."""
    try:
        found = [str(row[0]) for row in conn.execute(f"PRAGMA quick_check({limit})")]
        if found != ["ok"]:
            return found
        broken = log_break(conn)
    except (apsw.CorruptError, apsw.NotADBError) as exc:
        return [str(exc)]
    return [] if broken is None else [broken]


_BREAK = """
SELECT a.global_seq, a.parent_global_seq, a.parent_client_seq, b.global_seq, b.client_seq
FROM pjai_eventlog AS a LEFT JOIN pjai_eventlog AS b ON b.global_seq = a.global_seq - 1
WHERE (a.global_seq > 1 AND b.global_seq IS NULL)
   OR a.parent_global_seq != coalesce(b.global_seq, 0)
   OR a.parent_client_seq != coalesce(b.client_seq, 0)
LIMIT 1
"""


def log_break(conn: apsw.Connection) -> str | None:
    """Where the event log does not go on from one event to the next (an event lost
    from the middle, say), as :func:`salvage` reads it; ``None`` when it is one chain.
    Reads only the log's positions."""
    try:
        row = conn.execute(_BREAK).fetchone()
    except apsw.SQLError:
        return None  # no log table: not a store file, nothing to follow
    if row is None:
        return None
    at, parent = row[0], Position(row[1], row[2])
    if row[3] is None:
        return f"the log breaks at e{at}: its parent {parent} is not in the log"
    before = Position(row[3], row[4])
    return f"the log breaks at e{at}: its parent is {parent}, the event before it {before}"


def _utf8(value: object) -> int:
    if not isinstance(value, bytes):
        return 1
    try:
        value.decode()
    except UnicodeDecodeError:
        return 0
    return 1


def unreadable_rows(
    conn: apsw.Connection, table: str, keys: Sequence[str], texts: Sequence[str]
) -> list[tuple[str, list[str]]]:
    """Rows of ``table`` whose ``texts`` columns hold text that is not UTF-8.

    Each is named by its ``keys`` values (undecodable bytes shown as replacement
    characters) with the columns at fault; at most :data:`LISTED`.
    """
    if not texts:
        return []
    conn.create_scalar_function("pjai_utf8", cast(Any, _utf8), 1, deterministic=True)
    # Only TEXT values: compressed text is a BLOB and never decoded as text.
    oks = [
        f'CASE WHEN typeof("{c}") = \'text\' THEN pjai_utf8(CAST("{c}" AS BLOB)) ELSE 1 END'
        for c in texts
    ]
    checks = ", ".join(oks)
    key_columns = ", ".join(f'CAST("{k}" AS BLOB)' for k in keys)
    bad = " OR ".join(f"{ok} = 0" for ok in oks)
    sql = f'SELECT {key_columns}, {checks} FROM "{table}" WHERE {bad} LIMIT {LISTED}'
    found: list[tuple[str, list[str]]] = []
    for row in conn.execute(sql):
        key = "/".join(
            v.decode(errors="replace") if isinstance(v, bytes) else str(v) for v in row[: len(keys)]
        )
        found.append((key, [c for c, ok in zip(texts, row[len(keys) :], strict=True) if not ok]))
    return found


@dataclass(slots=True)
class Salvage:
    """What a damaged store file still holds."""

    meta: dict[str, str] = field(default_factory=dict)
    entries: list[LogEntry] = field(default_factory=list)
    """The event log from its start, as far as it reads whole and in order."""
    rejected: list[LogEntry] = field(default_factory=list)
    whole: bool = True
    """Whether every row of the log read, in one unbroken chain."""
    problem: str | None = None
    """Why the log is not whole."""


_COLUMNS = (
    "global_seq, client_seq, generation, parent_global_seq, parent_client_seq, "
    "CAST(event_id AS BLOB), CAST(name AS BLOB), CAST(args AS BLOB), CAST(client_id AS BLOB), "
    "CAST(session_id AS BLOB), CAST(at AS BLOB), CAST(status AS BLOB), CAST(error AS BLOB)"
)


def _entry(row: Sequence[object]) -> LogEntry:
    def text(value: object) -> str:
        if not isinstance(value, bytes):
            raise ValueError(f"expected text, found {value!r}")
        return value.decode()

    numbers = row[:5]
    if not all(isinstance(n, int) for n in numbers):
        raise ValueError(f"positions are not numbers: {numbers!r}")
    g, c, gen, pg, pc = (int(str(n)) for n in numbers)
    args = row[7]
    if not isinstance(args, bytes):
        raise ValueError("arguments are not text")
    args.decode()  # every log keeps its arguments as UTF-8 text
    status = text(row[11])
    if status not in ("pending", "confirmed", "rejected"):
        raise ValueError(f"unknown status {status!r}")
    record = EventRecord(
        id=text(row[5]),
        name=text(row[6]),
        args=msgspec.Raw(args),
        position=Position(g, c, gen),
        parent=Position(pg, pc),
        client_id=text(row[8]),
        session_id=text(row[9]),
        at=from_iso(text(row[10])),
    )
    error = None if row[12] is None else text(row[12])
    return LogEntry(record, cast(EventStatus, status), error)


def salvage(path: Path) -> Salvage:
    """Read what ``path`` still holds, without changing it."""
    found = Salvage()
    try:
        with read_only(path) as conn:
            _read(conn, found)
    except apsw.Error as exc:
        found.whole, found.problem = False, f"the file cannot be opened ({exc})"
    return found


def _read(conn: apsw.Connection, found: Salvage) -> None:
    try:
        sql = "SELECT CAST(key AS BLOB), CAST(value AS BLOB) FROM pjai_meta"
        for key, value in conn.execute(sql):
            if isinstance(key, bytes) and isinstance(value, bytes):
                found.meta[key.decode(errors="replace")] = value.decode(errors="replace")
    except apsw.Error:
        pass  # the log decides; identity comes from elsewhere if need be
    _read_log(conn, found)
    try:
        for row in conn.execute(f"SELECT {_COLUMNS} FROM pjai_rejected ORDER BY rowid"):
            try:
                found.rejected.append(_entry(row))
            except (ValueError, UnicodeDecodeError, msgspec.ValidationError):
                continue
    except apsw.Error:
        pass  # rejected events are the audit trail's, not the history's


def _read_log(conn: apsw.Connection, found: Salvage) -> None:
    parent = Position(0)
    try:
        # By rowid (global_seq is the rowid): the table's own pages, no index.
        for row in conn.execute(f"SELECT {_COLUMNS} FROM pjai_eventlog ORDER BY rowid"):
            try:
                entry = _entry(row)
            except (ValueError, UnicodeDecodeError, msgspec.ValidationError) as exc:
                found.whole = False
                found.problem = f"event at e{row[0]} cannot be read ({exc})"
                return
            if entry.record.parent.key != parent.key or entry.record.position.global_seq != (
                parent.global_seq + 1
            ):
                found.whole = False
                found.problem = f"the log breaks at e{entry.record.position.global_seq}"
                return
            found.entries.append(entry)
            parent = entry.record.position
    except apsw.Error as exc:
        found.whole = False
        found.problem = f"the log cannot be read past e{parent.global_seq} ({exc})"
