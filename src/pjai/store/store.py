"""The reactive, event-sourced store: event log, materialized state, live queries."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import apsw

from pjai.errors import (
    PjaiError,
    QueryError,
    StoreClosedError,
    StoreError,
)
from pjai.resource import Resource
from pjai.schema import SCHEMA
from pjai.schema.event import Event, Materialized, Schema
from pjai.schema.records import (
    ROOT,
    EventRecord,
    EventStatus,
    LogEntry,
    Position,
    session_of,
    stamp,
)
from pjai.schema.types import Progress, new_id, utc_now
from pjai.store import damage, intake, replay, upkeep
from pjai.store.apply import EventApplier
from pjai.store.boot import boot, make_whole
from pjai.store.changes import ChangeTracker
from pjai.store.commute import Footprints
from pjai.store.console import INSPECT_SECONDS, run_typed_sql
from pjai.store.live import LiveQueries, LiveQuery
from pjai.store.log import EventLog
from pjai.store.query import Params, Prepared, Query, Row, RowReader, prepare, read_with_tables
from pjai.store.rebase import RebaseResult, discard, planned, rebase
from pjai.store.sqlite import (
    BUSY_TIMEOUT_MS,
    Durability,
    add_functions,
    connect,
    file_size,
    translate_errors,
)
from pjai.store.state import StateWriter

__all__ = ["CommitHook", "Progress", "Store"]

log = logging.getLogger(__name__)


CommitHook = Callable[[list[Materialized]], object]
"""Called with a commit's new records, each with its payload and writes, inside its
transaction; raising aborts it."""


class Store(Resource):
    """PJai's reactive, event-sourced local store.

    Every change is an event: :meth:`commit` validates events, appends them to the event
    log and materializes them into SQLite state in one transaction. :meth:`query` reads
    the state; :meth:`live` keeps a query's result current. A standalone store confirms
    its events at once; with ``sync=True`` they stay pending until :meth:`rebase` brings
    the upstream history that confirms them.

    Open one with :meth:`open` (a file, WAL mode) or :meth:`memory`. A store is safe to
    use from several threads, and several processes may share a file: their commits take
    turns (docs/store.md), and each takes in the others' before it commits.
    """

    def __init__(
        self,
        conn: apsw.Connection,
        path: Path | None,
        schema: Schema,
        *,
        sync: bool,
        progress: Progress | None = None,
    ) -> None:
        self._conn = conn
        self.path = path
        self.schema = schema
        self.sync = sync
        self.session_id = new_id()
        self._lock = threading.RLock()
        self._closed = False
        self._log = EventLog(conn)
        self._state = StateWriter(conn, schema)
        self._applier = EventApplier(conn, schema, self._state)
        self._tracker = ChangeTracker(conn)
        self._rows = RowReader()
        self._live = LiveQueries()
        self._commit_hooks: list[CommitHook] = []
        self._rebase_hooks: list[Callable[[RebaseResult], object]] = []
        self._footprints = Footprints(schema)
        self._pending: list[EventRecord] | None = None  # the log's, read when first needed
        with translate_errors(f"opening store {path or ':memory:'}"):
            meta = boot(conn, self._log, self._state, path, schema, sync=sync)
        self.store_id = meta["store_id"]
        self.client_id = meta["client_id"]
        self._head: Position = ROOT
        self._confirmed: Position = ROOT
        self._generation = 0
        self._data_version = 0
        self._others_unseen = False
        """Other processes' commits were taken in and live queries have not re-run yet."""
        self._reload()
        if meta["fingerprint"] != schema.fingerprint:
            self.rebuild(progress)

    @classmethod
    def open(
        cls,
        path: str | Path | None,
        *,
        schema: Schema = SCHEMA,
        sync: bool = False,
        durability: Durability = "normal",
        progress: Progress | None = None,
    ) -> Store:
        """Open the store file at ``path``, creating it if missing; ``None`` for memory.

        If the file was written with another state schema, the state is rebuilt from
        the event log first (``progress`` reports it).
        """
        file = Path(path) if path is not None else None
        if file is not None:
            file.parent.mkdir(parents=True, exist_ok=True)
            if not file.exists():
                make_whole(file, lambda at: cls(connect(at, "full"), at, schema, sync=sync))
        conn = connect(file, durability)
        try:
            return cls(conn, file, schema, sync=sync, progress=progress)
        except BaseException:
            conn.close()
            raise

    @classmethod
    def memory(cls, *, schema: Schema = SCHEMA, sync: bool = False) -> Store:
        """A new store that lives in memory only."""
        return cls.open(None, schema=schema, sync=sync)

    # -- identity and position -------------------------------------------------

    @property
    def head(self) -> Position:
        """The position of the last event applied locally (pending ones included)."""
        return self._head

    @property
    def confirmed_head(self) -> Position:
        """The position of the last confirmed event (kept in memory: no lock, no query)."""
        self._check_open()
        return self._confirmed

    @property
    def pending_count(self) -> int:
        """How many events wait for confirmation (they sit right after the confirmed head)."""
        return self._head.global_seq - self.confirmed_head.global_seq

    @property
    def generation(self) -> int:
        """How many rebases renumbered pending events so far."""
        return self._generation

    # -- writing ---------------------------------------------------------------

    def commit(
        self, *events: Event, first: Callable[[Position], Sequence[EventRecord]] | None = None
    ) -> list[EventRecord]:
        """Validate, log and materialize ``events`` in one transaction: all or nothing.

        Returns the logged records. Raises an :class:`pjai.errors.EventError` naming the
        event and field at fault; the log and the state are then unchanged.

        ``first(head)`` (a standalone store only) is called under the file's write lock
        with the head as it stands then: the events confirmed elsewhere that it returns
        are taken in first, as :meth:`ingest` takes them, in the same transaction, and
        ``events`` go after them. What another process that takes the file's lock to
        write elsewhere wrote meanwhile cannot then take this commit's places.
        """
        if not events:
            return []
        if first is not None and self.sync:
            raise StoreError("a synced store takes confirmed events through rebase()")
        encoded = [self.schema.encode(event) for event in events]
        status: EventStatus = "pending" if self.sync else "confirmed"
        with self._lock:
            self._check_open()
            committed: list[Materialized] = []
            logged: list[tuple[EventRecord, EventStatus, str | None, bytes | None]] = []
            with self._write(f"committing {len(events)} event(s)") as deliveries:
                head = self._head
                if first is not None and (confirmed := intake.past_head(self, first(head))):
                    intake.take_in(self, confirmed)
                    head = confirmed[-1].position
                records = stamp(
                    ((name, args) for name, _, args in encoded),
                    after=head,
                    generation=self._generation,
                    client_id=self.client_id,
                    session_id=session_of(self.session_id),
                    at=utc_now(),
                    codec=self.schema.codec,
                    history=self._log,
                )
                for record, (_, payload, _) in zip(records, encoded, strict=True):
                    event = self.schema.materialize(record, payload)
                    # A synced store keeps each pending event's changeset; a standalone
                    # one applies the commit's events as one batch.
                    changeset = self._applier.apply(event, capture=True) if self.sync else None
                    logged.append((record, status, None, changeset))
                    committed.append(event)
                if not self.sync:
                    self._applier.apply_all(committed)
                self._log.append_many(logged)
                for hook in self._commit_hooks:
                    hook(committed)
            self._head = records[-1].position
            if not self.sync:
                self._confirmed = self._head
            elif self._pending is not None:
                self._pending.extend(records)
        self._deliver(deliveries)
        return records

    def rebase(self, upstream: Sequence[EventRecord]) -> RebaseResult:
        """Take confirmed ``upstream`` events that continue the confirmed history.

        Pending events that ``upstream`` echoes become confirmed. The others are rolled
        back with their inverted changesets, ``upstream`` is applied, and they are
        re-applied on top at new positions; one that no longer applies is marked
        rejected, with the reason, and kept for the audit trail. When no upstream event
        touches a row a pending one reads or writes (:mod:`pjai.store.commute`), the
        upstream events are applied on top instead and the pending ones only move.
        """
        return self._rewrite(
            f"rebasing onto {len(upstream)} upstream event(s)",
            lambda: rebase(self, self._log, upstream, self._pending_records()),
            refused="a standalone store confirms its own events; open with sync=True",
        )

    def pending_after(
        self, upstream: Sequence[EventRecord], limit: int | None = None
    ) -> list[EventRecord] | None:
        """The pending events (the first ``limit`` of them) as :meth:`rebase` onto
        ``upstream`` will leave them, without rebasing; ``None`` when only the rebase can
        tell.

        They are known when no ``upstream`` event touches a row that a pending event
        reads or writes, or the other way round (:mod:`pjai.store.commute`): the rebase
        then only renumbers them. A sync client pushes them while the rebase runs.
        """
        with self._lock:
            self._check_open()
            if not self.sync:
                raise StoreError("a standalone store confirms its own events; open with sync=True")
            self._follow_others()
            return planned(self, upstream, self._pending_records(), limit)

    def discard(self, event_id: str, reason: str) -> RebaseResult:
        """Reject a pending event that the upstream refused; later pending events move up.

        The event stays in the audit trail (:meth:`rejected`) with ``reason``.
        """
        return self._rewrite(
            f"rejecting pending event {event_id}",
            lambda: (discard(self, self._log, event_id, reason), None),
            refused="only a synced store has pending events to reject",
        )

    def _rewrite(
        self,
        doing: str,
        rewrite: Callable[[], tuple[RebaseResult, list[EventRecord] | None]],
        *,
        refused: str,
    ) -> RebaseResult:
        """Rewrite a synced store's pending history in one write (a standalone store
        refuses, saying ``refused``): ``rewrite()`` says what it did and the pending
        events it leaves (``None``: read them again when asked). Then deliver the live
        queries and tell the rebase hooks."""
        with self._lock:
            self._check_open()
            if not self.sync:
                raise StoreError(refused)
            with self._write(doing) as deliveries:
                result, pending = rewrite()
            self._pending = pending
            self._head = self._log.head()
            self._confirmed = self._log.confirmed_head()
        self._deliver(deliveries)
        self._rebased(result)
        return result

    def meta(self, key: str) -> str | None:
        """A value the store keeps for its owner (e.g. the sync client), or ``None``."""
        with self._lock:
            self._check_open()
            return self._log.meta().get(key)

    def set_meta(self, key: str, value: str) -> None:
        """Keep ``value`` under ``key`` in the store file."""
        with self._lock:
            self._check_open()
            self._log.set_meta(**{key: value})

    def add_commit_hook(self, hook: CommitHook) -> None:
        """Run ``hook(events)`` inside every commit's transaction, before it commits.

        A hook that raises aborts the commit, which then leaves no trace. The hybrid
        manager projects commits into the SQL primary this way.
        """
        self._commit_hooks.append(hook)

    def remove_commit_hook(self, hook: CommitHook) -> None:
        """Stop running ``hook``."""
        self._commit_hooks.remove(hook)

    def add_rebase_hook(self, hook: Callable[[RebaseResult], object]) -> None:
        """Run ``hook(result)`` after every rebase or discard has committed.

        It runs outside the store's lock, in the thread that rebased. The hybrid manager
        projects newly confirmed events into the SQL primary this way.
        """
        self._rebase_hooks.append(hook)

    def _rebased(self, result: RebaseResult) -> None:
        for hook in self._rebase_hooks:
            try:
                hook(result)
            except Exception:  # the rebase stands; a failing hook must not undo it
                log.exception("a rebase hook failed")

    def ingest(self, records: Sequence[EventRecord]) -> int:
        """Append events confirmed elsewhere, continuing the head of a standalone store.

        The SQL primary's journal and export archives hand events back this way. An
        event that does not apply is kept with the reason, as in a rebuild. Events this
        store logged meanwhile (another process on the file took them in first) are
        skipped. Returns how many applied.
        """
        if not records:
            return 0
        with self._lock:
            self._check_open()
            if self.sync:
                raise StoreError("a synced store takes confirmed events through rebase()")
            with self._write(f"ingesting {len(records)} event(s)") as deliveries:
                records = intake.past_head(self, records)
                if not records:
                    return 0
                applied = intake.take_in(self, records)
            self._head = self._confirmed = records[-1].position
        self._deliver(deliveries)
        return applied

    def adopt(self, records: Sequence[EventRecord]) -> int:
        """Take events of another history as this synced store's own pending events.

        Each keeps its id, arguments, time and session (the audit trail's word on who
        made it: a plugin's run, say), becomes this instance's client's and is numbered
        after the head; the sync client then pushes it like any
        local commit. An event that does not apply here is kept as rejected, with the
        reason, and never pushed (as after a rebase). Bringing a store's data to a new
        server goes this way (export, then import into a new synced data directory).
        Returns how many applied; :class:`~pjai.errors.RebaseError`, and nothing taken,
        if one of them is already in this store.
        """
        if not records:
            return 0
        with self._lock:
            self._check_open()
            if not self.sync:
                raise StoreError("a standalone store takes another history through ingest()")
            with self._write(f"adopting {len(records)} event(s)") as deliveries:
                applied, head = intake.adopt(self, records)
            self._head = head
            self._pending = None
        self._deliver(deliveries)
        return applied

    def rebuild(self, progress: Progress | None = None) -> int:
        """Recreate the state from the event log; returns the number of events applied.

        When this schema wrote the log's outcomes (the same fingerprint), no event is
        pending and none was refused, they are trusted: the events recorded as applied
        are written in bulk (:meth:`StateWriter.load`), without indexes until the end.
        Should one of them not apply after all, that attempt is undone and every event
        is decided again, one by one, as after a schema change.
        """
        return replay.rebuild(self, progress, trust=True)

    # -- reading ---------------------------------------------------------------

    def query(self, query: Query, params: Params = None) -> list[Row]:
        """Run a read query (SQL text or a SQLAlchemy select); rows are typed tuples."""
        prepared = prepare(query, params)
        with self._lock:
            self._check_open()
            with self._read_only("running query"):
                cursor = self._conn.cursor()
                cursor.execute(prepared.sql, prepared.params)
                return self._rows.read(cursor)

    def inspect(
        self, sql: str, limit: int, *, seconds: float = INSPECT_SECONDS
    ) -> tuple[list[str], list[Row]]:
        """Column names and first ``limit`` rows of SQL text typed by a person (a
        console): it may only read, with no ``PRAGMA``, ``ATTACH`` or write anywhere in
        it, so that no statement can lift :meth:`query`'s read-only guard.

        A file store is read on a connection of its own, so commits and other reads do
        not wait for it; it is stopped after ``seconds``, and a value longer than
        :data:`INSPECT_MAX_BYTES` is refused. Raises :class:`~pjai.errors.QueryError`
        for bad SQL, anything but reading, or a query over its budget.
        """
        self._check_open()
        if self.path is None:  # a private in-memory store has one connection
            with self._lock, self._read_only("running SQL"):
                return run_typed_sql(self._conn, self._rows, sql, limit, seconds)
        with translate_errors("running SQL"):
            conn = apsw.Connection(str(self.path), flags=apsw.SQLITE_OPEN_READONLY)
            try:
                conn.set_busy_timeout(BUSY_TIMEOUT_MS)
                add_functions(conn)
                return run_typed_sql(conn, self._rows, sql, limit, seconds)
            finally:
                conn.close()

    def live(self, query: Query, params: Params = None) -> LiveQuery:
        """A :class:`LiveQuery` that keeps ``query``'s result current."""
        self._check_open()
        return LiveQuery(self, prepare(query, params, live=True))

    def events(
        self, *, after: Position | None = None, named: Collection[str] | None = None
    ) -> Iterator[LogEntry]:
        """The event log in history order, from just after ``after``; only the events
        with a name in ``named``, if given (the others are not read)."""
        self._check_open()
        yield from self._log.entries(after=after, named=named)

    def status(self, event_id: str) -> EventStatus | None:
        """``pending``, ``confirmed`` or ``rejected``; ``None`` for an unknown event."""
        with self._lock:
            self._check_open()
            return self._log.status(event_id)

    def rejected(self) -> list[LogEntry]:
        """Pending events that rebases could not apply, with the reasons."""
        with self._lock:
            self._check_open()
            return self._log.rejected()

    def quarantined(self, *, after: int = 0, limit: int | None = None) -> list[LogEntry]:
        """Confirmed events this store could not apply, oldest first, with the reasons.

        They stay in the log (the agreed history holds them) but not in the state: an
        event from a newer PJai, or one that no backend can store. Sync and replay go on
        past them; ``pjai doctor`` lists them. ``after``: only those after that global
        position.
        """
        with self._lock:
            self._check_open()
            return self._log.quarantined(after=after, limit=-1 if limit is None else limit)

    def count_quarantined(self, *, after: int = 0) -> int:
        """How many events :meth:`quarantined` would list."""
        with self._lock:
            self._check_open()
            return self._log.count_quarantined(after=after)

    def pending(self) -> list[EventRecord]:
        """Events committed here and not yet confirmed, in order."""
        with self._lock:
            self._check_open()
            self._follow_others()
            return list(self._pending_records())

    def refresh(self) -> bool:
        """Take in what other processes committed to this store file, and re-run the
        live queries for what they committed since the queries last heard; whether they
        had (commits taken in by a read, such as :meth:`pending`, count until a refresh
        or a write re-runs the queries for them).

        Cheap (one ``PRAGMA data_version``): a long-running owner of a store, such as
        the sync client or the web app, calls it periodically. Every write and
        :meth:`pending` take those commits in by themselves.
        """
        with self._lock:
            self._check_open()
            with translate_errors("looking for other processes' commits"):
                self._follow_others()
                if not self._others_unseen:
                    return False
                deliveries = self._rerun_for_others()
        self._deliver(deliveries)
        return True

    def _rerun_for_others(self) -> list[LiveQuery]:
        """Re-run the live queries that other processes' commits may have changed (their
        events and what they did to the state, the full-text index included: the log is
        read live too); the ones whose result changed. Callers hold the lock."""
        self._others_unseen = False
        return [live for live in self._live if live.tables and self._rerun(live)]

    def _pending_records(self) -> list[EventRecord]:
        """The pending events, kept in memory once read (callers hold the lock)."""
        if self._pending is None:
            self._pending = [entry.record for entry, _ in self._log.pending()]
        return self._pending

    def state_hash(self) -> str:
        """A digest of every state table's content, equal for equal states."""
        with self._lock:
            self._check_open()
            return upkeep.state_hash(self._conn, self._state.tables)

    @contextmanager
    def exclusive(self) -> Iterator[Store]:
        """Hold off commits from other threads for the block: one consistent state."""
        with self._lock:
            self._check_open()
            yield self

    @contextmanager
    def snapshot(self) -> Iterator[Store]:
        """Read one state of the file for the block, its log and head included: commits
        of other threads wait, and other processes' commits made meanwhile are not seen
        (one read transaction). For reads that must agree with each other, as an export's.
        """
        with self._lock:
            self._check_open()
            with translate_errors("reading one state of the store"):
                self._conn.execute("BEGIN")
                try:
                    self._follow_others()  # the head, as of this state
                    yield self
                finally:
                    self._conn.execute("COMMIT")

    def stream(self, sql: str, *, typed: bool = True) -> Iterator[tuple[Any, ...]]:
        """Rows of a read query one by one, holding the store's lock until exhausted.

        For long scans that must see one consistent state (``pjai verify``, export):
        commits wait until the iteration ends. ``typed=False`` yields values as SQLite
        stores them.
        """
        with self._lock:
            self._check_open()
            with self._read_only("streaming rows"):
                cursor = self._conn.cursor()
                cursor.execute(sql)
                yield from (self._rows.iterate(cursor) if typed else cursor)

    def summary(self) -> dict[str, object]:
        """Identity, positions, event counts, row counts and size, for people and tools."""
        with self._lock:
            self._check_open()
            rows = {
                name: self._conn.execute(f'SELECT count(*) FROM "{name}"').get
                for name in sorted(self._state.tables)
            }
            return {
                "path": str(self.path or ":memory:"),
                "store_id": self.store_id,
                "client_id": self.client_id,
                "mode": "sync" if self.sync else "standalone",
                "schema": self.schema.fingerprint,
                "head": str(self._head),
                "confirmed_head": str(self._log.confirmed_head()),
                "events": self._log.count(),
                "pending": self._log.count("pending"),
                "rejected": self._log.count("rejected"),
                "quarantined": self._log.count_quarantined(),
                "rows": rows,
                "disk_bytes": self.disk_bytes(),
            }

    def check(self, *, aside: bool = False) -> list[str]:
        """What SQLite finds wrong with the file's pages (``PRAGMA quick_check``); ``[]``
        when it is sound. Reads every page: a second per few hundred MB.

        ``aside``: read the file through a connection of its own, without the store's
        lock, so that another thread can check while this store is read (``pjai
        verify``). A store in memory has no file to open again.
        """
        if aside:
            if self.path is None:
                raise ValueError("a store in memory has no file to check aside")
            self._check_open()
            with damage.read_only(self.path, busy_timeout_ms=BUSY_TIMEOUT_MS) as conn:
                return damage.problems(conn)
        with self._lock:
            self._check_open()
            return damage.problems(self._conn)

    def unreadable_rows(self, table: str) -> list[tuple[str, list[str]]]:
        """Rows of a state table whose text cannot be read back (bytes that are not
        UTF-8), by primary key, with the columns at fault; the first few."""
        with self._lock:
            self._check_open()
            found = self._state.tables.get(table)
            if found is None:
                raise QueryError(f"the store has no table {table!r}")
            keys = [c.name for c in found.primary_key.columns]
            columns = [c.name for c in found.columns]
            with translate_errors(f"looking for unreadable rows of {table}"):
                return damage.unreadable_rows(self._conn, table, keys, columns)

    def restore(self, salvaged: damage.Salvage, progress: Progress | None = None) -> int:
        """Fill this new, empty store with a salvaged log and identity, then rebuild its
        state; returns the events applied. Used to rebuild a damaged store file."""
        with self._lock:
            self._check_open()
            if self._log.count() or self._log.count("rejected"):
                raise StoreError("only an empty store takes a salvaged log")
            keep = {k: v for k, v in salvaged.meta.items() if k not in ("format", "fingerprint")}
            keep["mode"] = "sync" if self.sync else "standalone"
            with self._write("restoring a salvaged log") as deliveries:
                self._log.set_meta(**keep)
                self._log.append_many(
                    [(e.record, e.status, e.error, None) for e in salvaged.entries]
                )
                for entry in salvaged.rejected:
                    self._log.reject(entry.record, entry.error or "rejected")
            self._deliver(deliveries)
            meta = self._log.meta()
            self.store_id, self.client_id = meta["store_id"], meta["client_id"]
            self._reload()
        # The salvaged outcomes may come from another version: each is decided again.
        return replay.rebuild(self, progress, trust=False)

    def load(self, entries: Sequence[LogEntry], *, indexes: bool = True) -> int:
        """Fill the state of this store, whose log is empty, with the state ``entries``
        (another store's log, in order) make, trusting the outcomes that log records;
        returns the events applied. The log stays empty: the state is for reading.

        Events recorded as refused are skipped; the others are applied in bulk
        (:meth:`StateWriter.load`), several times faster than :meth:`rebuild`. Without
        ``indexes`` only the tables and their primary keys are made (enough to read by
        key and to compare states). If an event recorded as applied does not apply, the
        load raises and this store is left empty.
        """
        return replay.load(self, entries, indexes=indexes)

    @property
    def live_queries(self) -> int:
        """How many live queries have subscribers (and re-run on commits)."""
        return len(self._live)

    def subscribed_live(self) -> list[LiveQuery]:
        """The live queries that have subscribers now (those :attr:`live_queries` counts)."""
        return list(self._live)

    def backup(self, destination: str | Path) -> None:
        """Copy the store, as of now, to a new file at ``destination``, while it is in use.

        SQLite's online backup copies one consistent state (other processes may go on
        writing); the copy is written beside ``destination`` and moved there when
        whole, so a failure leaves no partial file.
        """
        target = Path(destination)
        with upkeep.written_whole(target) as partial, self._lock:
            self._check_open()
            with translate_errors(f"backing the store up to {target}"):
                upkeep.backup(self._conn, partial)

    def compact(self, *, wait_s: float = 5.0) -> bool:
        """Rewrite the file so that deleted rows leave nothing readable behind: each
        full-text index merged (its deleted words dropped), the file vacuumed, and the
        write-ahead log emptied. Returns whether the log was emptied: other connections
        reading an older state hold it (waited for up to ``wait_s``)."""
        with self._lock:
            self._check_open()
            with translate_errors("compacting the store"):
                return upkeep.compact(self._conn, in_memory=self.path is None, wait_s=wait_s)

    def disk_bytes(self) -> int:
        """Bytes the store file and its WAL take on disk."""
        return file_size(self.path)

    # -- lifecycle ---------------------------------------------------------------

    def close(self) -> None:
        """Close the store; live queries stop and release their subscribers."""
        with self._lock:
            if self._closed:
                return
            self._live.close_all()
            self._closed = True
            self._conn.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def __repr__(self) -> str:
        return f"<Store {self.path or ':memory:'} head={self._head} sync={self.sync}>"

    # -- internals shared with rebase and live queries -------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError("the store is closed")

    @contextmanager
    def _write(self, doing: str) -> Iterator[list[LiveQuery]]:
        """One write transaction; yields the list of live queries to deliver after it."""
        deliveries: list[LiveQuery] = []
        with translate_errors(doing):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._follow_others()
                self._tracker.begin(self._live.watch)
                yield deliveries
                self._state.flush(self._tracker.changed)
                self._conn.execute("COMMIT")
            except BaseException:
                if not self._conn.get_autocommit():
                    self._conn.execute("ROLLBACK")
                self._tracker.abandon()
                raise
            changes = self._tracker.end()
            if self._others_unseen:  # others committed before this write began
                deliveries.extend(self._rerun_for_others())
            deliveries.extend(
                live
                for live in self._live.affected(changes)
                if live not in deliveries and self._rerun(live)
            )

    @contextmanager
    def _read_only(self, doing: str) -> Iterator[None]:
        with translate_errors(doing):
            self._conn.execute("PRAGMA query_only=1")
            try:
                yield
            except apsw.ReadOnlyError as exc:
                raise QueryError(
                    f"{doing}: queries only read; commit events to change data"
                ) from exc
            finally:
                self._conn.execute("PRAGMA query_only=0")

    def _apply_logged(
        self, record: EventRecord, *, capture: bool
    ) -> tuple[str | None, bytes | None]:
        return self._applier.apply_logged(record, capture=capture)

    def _reload(self) -> None:
        """Read the positions and generation kept in memory from the file again.

        They are read in one read transaction, the data version with them: another
        process committing meanwhile must not leave a head older than the version that
        says it was read (the next commit would take a position already logged)."""
        outside = self._conn.get_autocommit()
        if outside:
            self._conn.execute("BEGIN")
        try:
            self._generation = int(self._log.meta()["generation"])
            self._head = self._log.head()
            self._confirmed = self._log.confirmed_head()
            self._pending = None
            self._data_version = self._conn.execute("PRAGMA data_version").get
        finally:
            if outside:
                self._conn.execute("COMMIT")

    def _follow_others(self) -> bool:
        """If another connection committed since this store last looked, reload what it
        keeps in memory; whether one had. Callers hold the lock."""
        if self._conn.execute("PRAGMA data_version").get == self._data_version:
            return False
        self._reload()
        self._others_unseen = True
        return True

    def _bump_generation(self) -> int:
        self._generation += 1
        self._log.set_meta(generation=str(self._generation))
        return self._generation

    def _rerun(self, live: LiveQuery) -> bool:
        try:
            return self.run_live(live)
        except PjaiError:
            log.exception("live query %r failed to re-run; it keeps its last result", live.sql)
            return False

    def run_live(self, live: LiveQuery) -> bool:
        """Run a live query (finding the tables it reads); whether its result changed
        (:class:`~pjai.store.live.LiveHost`)."""
        prepared = live.prepared
        assert isinstance(prepared, Prepared)
        with self._lock:
            self._check_open()
            started = time.perf_counter()
            with self._read_only("running live query"):
                if live._tables is None:  # its first run here
                    rows, tables = read_with_tables(self._conn, self._rows, prepared)
                else:
                    cursor = self._conn.cursor()
                    cursor.execute(prepared.sql, prepared.params)
                    rows, tables = self._rows.read(cursor), live.tables
            live.last_run_s = time.perf_counter() - started
            return live.set_result(rows, tables)

    @property
    def lock(self) -> threading.RLock:
        """The store's lock: commits, queries and live query runs take turns under it."""
        return self._lock

    def register_live(self, live: LiveQuery) -> None:
        """Re-run ``live`` after commits that change its data (it has a subscriber)."""
        self._check_open()
        self._live.add(live)

    def unregister_live(self, live: LiveQuery) -> None:
        """Stop re-running ``live``."""
        self._live.discard(live)

    def _deliver(self, deliveries: list[LiveQuery]) -> None:
        for live in deliveries:
            live.deliver()
