"""What the devtools show: the state as of any event (time travel) and diffs, a
read-only SQL console, the live queries, the event log and the sync positions.

Everything here reads the reactive store itself (its log, its state, its live
queries): with the store off, each raises :class:`~pjai.errors.QueryError` saying so.
Time travel and the console can take a while on a big log: a view calls them off the
event loop.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime

from pjai.app.datadir import DataDir
from pjai.app.reads.store_only import store_of
from pjai.app.syncstatus import SyncReport, sync_status
from pjai.errors import QueryError
from pjai.hybrid import HybridDatabaseManager
from pjai.schema.types import as_datetime
from pjai.store import LiveQuery, Row, Store
from pjai.store.timetravel import StateDiff, compare, diff, state_at

__all__ = [
    "EVENT_PAGE",
    "SQL_ROW_CAP",
    "STORE_OFF",
    "TABLE_PAGE",
    "EventAt",
    "LiveQueryInfo",
    "PastStates",
    "SqlResult",
    "StateAt",
    "SyncPositions",
    "event_at",
    "event_log",
    "live_queries",
    "log_head",
    "run_sql",
    "sync_positions",
    "table_names",
]

STORE_OFF = "the store is off: the devtools read the reactive store (switch it on)"
SQL_ROW_CAP = 500
"""The console shows at most this many rows of a result."""
TABLE_PAGE = 100
"""The time travel table browser shows this many rows of a table."""
EVENT_PAGE = 20
"""The event log shows this many of the newest events."""


def table_names(manager: HybridDatabaseManager) -> list[str]:
    """The state tables, in the schema's order."""
    return [table.name for table in store_of(manager, STORE_OFF).schema.metadata.sorted_tables]


def log_head(manager: HybridDatabaseManager) -> LiveQuery:
    """The log's last position (``head``, 0 when empty), kept current."""
    return store_of(manager, STORE_OFF).live(
        "SELECT coalesce(max(global_seq), 0) AS head FROM pjai_eventlog"
    )


def event_log(manager: HybridDatabaseManager, limit: int = EVENT_PAGE) -> LiveQuery:
    """The newest ``limit`` events, newest first, with position, name, time and status
    (``pending``, ``confirmed`` or ``rejected``; rejected ones kept beside the log)."""
    return store_of(manager, STORE_OFF).live(
        "SELECT global_seq AS position, name, at, status, error FROM pjai_eventlog "
        "UNION ALL SELECT global_seq, name, at, 'rejected', error FROM pjai_rejected "
        "ORDER BY position DESC LIMIT :limit",
        {"limit": limit},
    )


@dataclass(frozen=True, slots=True)
class EventAt:
    """The event at a position of the log: what a time travel position is labelled by."""

    position: int
    name: str
    at: datetime


def event_at(manager: HybridDatabaseManager, position: int) -> EventAt | None:
    """The event at ``position``; ``None`` for 0 (before the first event) or a gap."""
    rows = store_of(manager, STORE_OFF).query(
        "SELECT global_seq, name, at FROM pjai_eventlog WHERE global_seq = :p", {"p": position}
    )
    if not rows:
        return None
    seq, name, at = rows[0]
    return EventAt(int(seq), str(name), as_datetime(at))


@dataclass(frozen=True, slots=True)
class StateAt:
    """The state as of ``position`` (:class:`PastStates`): row counts per table, the
    first rows of one, and what changed from there to another position."""

    position: int
    event: EventAt | None
    counts: dict[str, int]
    table: str
    columns: list[str]
    rows: list[Row]
    changes: StateDiff


class PastStates:
    """Time travel for one page: the state as of a position, replayed from the log once
    and kept (one at a time) while the position and the store's history stay, so that
    choosing another table, or a commit that only moves "now", costs no replay.

    Use from one thread at a time; :meth:`close` frees the kept state.
    """

    def __init__(self, manager: HybridDatabaseManager) -> None:
        self._manager = manager
        self._lock = threading.Lock()
        self._kept: tuple[tuple[int, int, int], Store] | None = None
        self._closed = False
        self.replays = 0
        """How many times a state was replayed from the log."""

    def view(self, position: int, table: str, compare_to: int | None = None) -> StateAt:
        """Row counts of every table as of ``position``, ``table``'s first
        :data:`TABLE_PAGE` rows by primary key, and the diff to ``compare_to`` (the head
        when ``None``)."""
        store = store_of(self._manager, STORE_OFF)
        tables = {t.name: t for t in store.schema.metadata.sorted_tables}
        if table not in tables:
            raise QueryError(f"the store has no table {table!r}; choose one of {', '.join(tables)}")
        keys = ", ".join(f'"{c.name}"' for c in tables[table].primary_key.columns) or "rowid"
        head = store.head.global_seq
        other = head if compare_to is None else compare_to
        with self._lock:
            try:
                past = self._past(store, position)
                counts = {
                    name: int(past.query(f'SELECT count(*) FROM "{name}"')[0][0]) for name in tables
                }
                columns, rows = past.inspect(
                    f'SELECT * FROM "{table}" ORDER BY {keys} LIMIT {TABLE_PAGE}', TABLE_PAGE
                )
                if other == head:
                    changes = compare(past, store, position, head)
                else:
                    changes = diff(store, position, other)
            finally:
                if self._closed:
                    self._drop()
        event = event_at(self._manager, position)
        return StateAt(position, event, counts, table, columns, rows, changes)

    def _past(self, store: Store, position: int) -> Store:
        # A rebase renumbers pending events (a new generation): the past may then differ.
        key = (id(store), position, store.generation)
        if self._kept is not None and self._kept[0] == key:
            return self._kept[1]
        self._drop()
        past = state_at(store, position, indexes=False)  # read by key only
        self.replays += 1
        self._kept = (key, past)
        return past

    def _drop(self) -> None:
        if self._kept is not None:
            self._kept[1].close()
            self._kept = None

    def close(self) -> None:
        """Free the kept state, at once or, if a :meth:`view` runs, when it ends."""
        self._closed = True
        if self._lock.acquire(blocking=False):
            try:
                self._drop()
            finally:
                self._lock.release()


@dataclass(frozen=True, slots=True)
class SqlResult:
    """A console query's columns, rows (at most :data:`SQL_ROW_CAP`), whether there were
    more, and the seconds it took."""

    columns: list[str]
    rows: list[Row]
    capped: bool
    seconds: float


def run_sql(manager: HybridDatabaseManager, sql: str, cap: int = SQL_ROW_CAP) -> SqlResult:
    """Run console SQL on the store's state, reading only (see
    :meth:`~pjai.store.Store.inspect`); raises :class:`QueryError` with the reason."""
    if not sql.strip():
        raise QueryError("type a query first, e.g. SELECT * FROM personas")
    store = store_of(manager, STORE_OFF)
    started = time.perf_counter()
    columns, rows = store.inspect(sql, cap + 1)
    seconds = time.perf_counter() - started
    return SqlResult(columns, rows[:cap], len(rows) > cap, seconds)


@dataclass(frozen=True, slots=True)
class LiveQueryInfo:
    """A live query the store re-runs: its SQL, subscribers, runs and last run time."""

    sql: str
    tables: list[str]
    subscribers: int
    runs: int
    last_run_s: float | None


def live_queries(manager: HybridDatabaseManager) -> list[LiveQueryInfo]:
    """The store's live queries that have subscribers, the most run first."""
    found = [
        LiveQueryInfo(live.sql, sorted(live.tables), live.subscribers, live.runs, live.last_run_s)
        for live in store_of(manager, STORE_OFF).subscribed_live()
    ]
    return sorted(found, key=lambda info: (-info.runs, info.sql))


@dataclass(frozen=True, slots=True)
class SyncPositions:
    """Where the store stands: its head, the confirmed head, pending and rejected
    events, the manager's head (what SQL follows), and the sync client's report when the
    directory syncs."""

    head: int
    confirmed_head: int
    pending: int
    rejected: int
    manager_head: int
    syncing: bool
    report: SyncReport | None


def sync_positions(data_dir: DataDir, manager: HybridDatabaseManager) -> SyncPositions:
    """The store's positions now, and the sync status of a synced directory."""
    store = store_of(manager, STORE_OFF)
    return SyncPositions(
        head=store.head.global_seq,
        confirmed_head=store.confirmed_head.global_seq,
        pending=store.pending_count,
        rejected=len(store.rejected()),
        manager_head=manager.head(),
        syncing=manager.syncing,
        report=sync_status(data_dir) if manager.syncing else None,
    )
