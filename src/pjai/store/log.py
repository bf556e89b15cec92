"""The event log table and the store's metadata, inside the store database."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Sequence
from typing import Any

import apsw
import msgspec

from pjai.schema.records import EventRecord, EventStatus, LogEntry, Position, args_text
from pjai.schema.types import from_iso, to_iso

__all__ = ["INTERNAL_TABLES", "EventLog", "Move"]

LOG_TABLE = "pjai_eventlog"
REJECTED_TABLE = "pjai_rejected"
META_TABLE = "pjai_meta"
INTERNAL_TABLES = (LOG_TABLE, REJECTED_TABLE, META_TABLE)

# The log holds the live history, one row per global position (its rowid). Pending
# events keep their changeset until confirmed. Events rejected by a rebase move to
# their own table with the reason, so the audit trail keeps them.
_EVENT_COLUMNS = """
    generation INTEGER NOT NULL,
    parent_global_seq INTEGER NOT NULL,
    parent_client_seq INTEGER NOT NULL,
    event_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    args TEXT NOT NULL,
    client_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    at TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'rejected')),
    error TEXT,
    changeset BLOB
"""
# Confirmed events that could not be applied are few; the index finds them at once.
_QUARANTINE_INDEX = (
    f"CREATE INDEX IF NOT EXISTS {LOG_TABLE}_quarantined ON {LOG_TABLE} (global_seq) "
    "WHERE error IS NOT NULL"
)
# The events of a few names (the erasures, read on opening a directory) are found
# without reading the whole log; the rowid (global_seq) orders each name's entries.
_NAME_INDEX = f"CREATE INDEX IF NOT EXISTS {LOG_TABLE}_name ON {LOG_TABLE} (name)"
_DDL = f"""
CREATE TABLE IF NOT EXISTS {META_TABLE} (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS {LOG_TABLE} (
    global_seq INTEGER PRIMARY KEY,
    client_seq INTEGER NOT NULL,
    {_EVENT_COLUMNS}
);
CREATE INDEX IF NOT EXISTS {LOG_TABLE}_pending ON {LOG_TABLE} (status) WHERE status = 'pending';
{_QUARANTINE_INDEX};
{_NAME_INDEX};
CREATE TABLE IF NOT EXISTS {REJECTED_TABLE} (
    global_seq INTEGER NOT NULL,
    client_seq INTEGER NOT NULL,
    {_EVENT_COLUMNS}
);
"""

_COLUMNS = (
    "global_seq, client_seq, generation, parent_global_seq, parent_client_seq, event_id, "
    "name, args, client_id, session_id, at, status, error"
)
_INSERT = f"INSERT INTO {{table}} ({_COLUMNS}, changeset) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
_ORDER = "ORDER BY global_seq"

LogRow = tuple[Any, ...]

Move = tuple[int, EventRecord, EventStatus]
"""An event's move in the history: its ``global_seq`` now, its record at the new
position, its new status (see :meth:`EventLog.move`)."""


def _row(
    record: EventRecord, status: EventStatus, error: str | None, changeset: bytes | None
) -> LogRow:
    pos, parent = record.position, record.parent
    return (
        pos.global_seq,
        pos.client_seq,
        pos.generation,
        parent.global_seq,
        parent.client_seq,
        record.id,
        record.name,
        args_text(record),
        record.client_id,
        record.session_id,
        to_iso(record.at),
        status,
        error,
        changeset,
    )


def _entry(row: Sequence[Any]) -> LogEntry:
    record = EventRecord(
        id=row[5],
        name=row[6],
        args=msgspec.Raw(row[7]),
        position=Position(row[0], row[1], row[2]),
        parent=Position(row[3], row[4]),
        client_id=row[8],
        session_id=row[9],
        at=from_iso(row[10]),
    )
    return LogEntry(record, row[11], row[12])


class EventLog:
    """Append-only history of events, with statuses and the changesets of pending ones."""

    def __init__(self, conn: apsw.Connection) -> None:
        self._conn = conn

    def create(self) -> None:
        """Create the log and metadata tables if they do not exist."""
        self._conn.execute(_DDL)

    def upgrade(self) -> None:
        """Add what a log made by an earlier PJai lacks (the quarantine index, the index
        by name): each is built once, on the first opening by a PJai that has it."""
        self._conn.execute(_QUARANTINE_INDEX)
        self._conn.execute(_NAME_INDEX)

    def exists(self) -> bool:
        """Whether this database holds a PJai event log."""
        sql = "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN (?, ?, ?)"
        return int(self._conn.execute(sql, INTERNAL_TABLES).get) == len(INTERNAL_TABLES)

    # -- metadata ---------------------------------------------------------------

    def meta(self) -> dict[str, str]:
        """All metadata entries."""
        return dict(self._conn.execute(f"SELECT key, value FROM {META_TABLE}"))

    def set_meta(self, **values: str) -> None:
        """Insert or replace metadata entries."""
        self._conn.executemany(
            f"INSERT OR REPLACE INTO {META_TABLE} (key, value) VALUES (?, ?)",
            list(values.items()),
        )

    # -- writing ----------------------------------------------------------------

    def append(
        self,
        record: EventRecord,
        status: EventStatus,
        *,
        error: str | None = None,
        changeset: bytes | None = None,
    ) -> None:
        """Add one event to the live history."""
        self.append_many([(record, status, error, changeset)])

    def append_many(
        self, items: Sequence[tuple[EventRecord, EventStatus, str | None, bytes | None]]
    ) -> None:
        """Add events to the live history, in order."""
        self._conn.executemany(_INSERT.format(table=LOG_TABLE), [_row(*item) for item in items])

    def reject(self, record: EventRecord, error: str) -> None:
        """Keep an event that a rebase could not apply, with the reason."""
        self._conn.execute(
            _INSERT.format(table=REJECTED_TABLE), _row(record, "rejected", error, None)
        )

    def set_status(self, event_ids: Sequence[str], status: EventStatus) -> None:
        """Change the status of events; confirmed events drop their changeset."""
        self._conn.executemany(
            f"UPDATE {LOG_TABLE} SET status = ?, changeset = NULL WHERE event_id = ?"
            if status == "confirmed"
            else f"UPDATE {LOG_TABLE} SET status = ? WHERE event_id = ?",
            [(status, event_id) for event_id in event_ids],
        )

    def set_outcome(self, event_id: str, error: str | None, changeset: bytes | None) -> None:
        """Record why an event was not applied (or that it was) and its changeset."""
        self._conn.execute(
            f"UPDATE {LOG_TABLE} SET error = ?, changeset = ? WHERE event_id = ?",
            (error, changeset, event_id),
        )

    def move(self, moves: Sequence[Move]) -> None:
        """Move events from one place in the history to another, each given as
        ``(global_seq now, the record at its new position, new status)``.

        Events only move on (as a rebase moves them), and the last goes first: each row
        moves into a place that is free by then. Confirmed events drop their changeset.
        """
        self._conn.executemany(
            f"UPDATE {LOG_TABLE} SET global_seq = ?, client_seq = ?, generation = ?, "
            "parent_global_seq = ?, parent_client_seq = ?, status = ?, "
            "changeset = CASE WHEN ? = 'confirmed' THEN NULL ELSE changeset END "
            "WHERE global_seq = ?",
            [
                (
                    new.position.global_seq,
                    new.position.client_seq,
                    new.position.generation,
                    new.parent.global_seq,
                    new.parent.client_seq,
                    status,
                    status,
                    seq,
                )
                for seq, new, status in sorted(moves, key=lambda m: m[0], reverse=True)
            ],
        )

    def delete(self, event_ids: Sequence[str]) -> None:
        """Remove events (pending events about to be re-appended at new positions)."""
        self._conn.executemany(
            f"DELETE FROM {LOG_TABLE} WHERE event_id = ?", [(i,) for i in event_ids]
        )

    # -- reading ----------------------------------------------------------------

    def head(self) -> Position:
        """The position of the last event of the live history, or ``ROOT``."""
        row = self._conn.execute(
            f"SELECT global_seq, client_seq, generation FROM {LOG_TABLE} {_ORDER} DESC LIMIT 1"
        ).fetchone()
        return Position(*row) if row else Position(0)

    def confirmed_head(self) -> Position:
        """The position of the last confirmed event, or ``ROOT``."""
        row = self._conn.execute(
            f"SELECT global_seq, client_seq, generation FROM {LOG_TABLE} "
            f"WHERE status = 'confirmed' {_ORDER} DESC LIMIT 1"
        ).fetchone()
        return Position(*row) if row else Position(0)

    def pending(self) -> list[tuple[LogEntry, bytes | None]]:
        """Pending events in order, each with its changeset."""
        rows = self._conn.execute(
            f"SELECT {_COLUMNS}, changeset FROM {LOG_TABLE} WHERE status = 'pending' {_ORDER}"
        )
        return [(_entry(row), row[13]) for row in rows]

    def entries(
        self,
        *,
        after: Position | None = None,
        named: Collection[str] | None = None,
        batch: int = 2_000,
    ) -> Iterator[LogEntry]:
        """The live history in order, from just after ``after``; only the events with a
        name in ``named``, if given (the others are not read)."""
        last: Any = after.global_seq if after else -1
        names = sorted(named) if named is not None else []
        where = f" AND name IN ({','.join('?' * len(names))})" if named is not None else ""
        sql = f"SELECT {_COLUMNS} FROM {LOG_TABLE} WHERE global_seq > ?{where} {_ORDER} LIMIT ?"
        while True:
            rows = self._conn.execute(sql, (last, *names, batch)).fetchall()
            yield from map(_entry, rows)
            if len(rows) < batch:
                return
            last = rows[-1][0]

    def last(self, names: Collection[str], persona_id: str) -> bytes | None:
        """The stored arguments of the newest applied event (not quarantined) with a
        name in ``names`` whose ``persona_id`` is ``persona_id``, or ``None``
        (:class:`pjai.schema.codec.History`). Only the events of those names are read."""
        marks = ",".join("?" * len(names))
        row = self._conn.execute(
            f"SELECT args FROM {LOG_TABLE} WHERE name IN ({marks}) AND error IS NULL AND "
            # Arguments a peer sent that are not JSON are quarantined, yet not read.
            "CASE WHEN json_valid(args) THEN json_extract(args, '$.persona_id') END = ? "
            "ORDER BY global_seq DESC LIMIT 1",
            (*sorted(names), persona_id),
        ).fetchone()
        return None if row is None else str(row[0]).encode()

    def settled(self, event_ids: Sequence[str]) -> list[str]:
        """Which of ``event_ids`` the log holds as other than pending."""
        rows = self._conn.execute(
            f"SELECT event_id FROM {LOG_TABLE} WHERE status != 'pending' "
            "AND event_id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(event_ids)),),
        )
        return [str(row[0]) for row in rows]

    def status(self, event_id: str) -> EventStatus | None:
        """Where an event stands, or ``None`` if this store never had it."""
        row = self._conn.execute(
            f"SELECT status FROM {LOG_TABLE} WHERE event_id = ?", (event_id,)
        ).fetchone()
        if row is None:
            row = self._conn.execute(
                f"SELECT status FROM {REJECTED_TABLE} WHERE event_id = ?", (event_id,)
            ).fetchone()
        return row[0] if row else None

    def quarantined(self, *, after: int = 0, limit: int = -1) -> list[LogEntry]:
        """Confirmed events after global position ``after`` that could not be applied
        here, oldest first."""
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM {LOG_TABLE} WHERE error IS NOT NULL "
            f"AND status = 'confirmed' AND global_seq > ? {_ORDER} LIMIT ?",
            (after, limit),
        )
        return [_entry(row) for row in rows]

    def count_quarantined(self, *, after: int = 0) -> int:
        """How many confirmed events after ``after`` could not be applied here."""
        sql = (
            f"SELECT count(*) FROM {LOG_TABLE} WHERE error IS NOT NULL "
            "AND status = 'confirmed' AND global_seq > ?"
        )
        return int(self._conn.execute(sql, (after,)).get)

    def rejected(self) -> list[LogEntry]:
        """Events rejected by rebases, oldest first."""
        rows = self._conn.execute(f"SELECT {_COLUMNS} FROM {REJECTED_TABLE} ORDER BY rowid")
        return [_entry(row) for row in rows]

    def count(self, status: EventStatus | None = None) -> int:
        """Number of events in the live history (with ``status``, if given)."""
        if status is None:
            return int(self._conn.execute(f"SELECT count(*) FROM {LOG_TABLE}").get)
        if status == "rejected":
            return int(self._conn.execute(f"SELECT count(*) FROM {REJECTED_TABLE}").get)
        sql = f"SELECT count(*) FROM {LOG_TABLE} WHERE status = ?"
        return int(self._conn.execute(sql, (status,)).get)
