"""The projector: keeps the SQL primary equal to the store's log, exactly once, in order.

It owns the one state machine of the hybrid write path. Each commit through the store
is projected into SQL inside the store's transaction (standalone), or, in a synced
store, each rebase that confirms events projects them in the server's order::

                 commit hook wrote SQL           store committed
      in_step ───────────────────────▶ in_flight ────────────────▶ in_step
       ▲   ▲                               │
       │   │ reconciled                    │ the store's commit failed after SQL
       │   │ (before the next commit)      ▼ took the events
       │   └────────────────────────── unsettled   SQL is ahead of the store
       │
       │ caught up (retry with backoff    behind    the store is ahead of SQL:
       └───────── 0.2 s ... 30 s) ◀────────────     SQL was unreachable

An event SQL refuses when committing (strict projection) aborts the commit; one it
refuses while catching up is quarantined, never retried. With the store off,
:meth:`Projector.append` commits straight to SQL and journals each event, so that
:meth:`reconcile` can bring the store up to the journal when it is switched back on
(:mod:`pjai.hybrid.storeoff`). Gaps in the journal: :mod:`pjai.hybrid.gaps`; the
retries' timer: :mod:`pjai.hybrid.retry`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from functools import partial

from pjai.errors import (
    ConfigError,
    PjaiError,
    SqlAheadError,
    SqlError,
    SqlUnavailableError,
    StoreCorruptError,
)
from pjai.hybrid.bridge import Bridge
from pjai.hybrid.files import UNSEEN
from pjai.hybrid.gaps import holding_journal, journal_break, unbroken, whole_start
from pjai.hybrid.recovery import RebuiltFrom
from pjai.hybrid.retry import RetryTimer
from pjai.hybrid.storeoff import (
    check_one_history,
    commit_store_off,
    refuse_unseen_history,
    store_off_commits,
)
from pjai.schema.event import Event, Materialized, Schema
from pjai.schema.records import EventRecord, Position
from pjai.schema.types import Progress
from pjai.sql import journal
from pjai.sql.rebalance import check_placement
from pjai.sql.shards import ShardSet
from pjai.store import Store
from pjai.store.filehead import FileHead

__all__ = ["Projector"]

log = logging.getLogger(__name__)


AHEAD_RETRIES = 5
"""How often a commit follows store-off commits that took its place before it gives up:
those the store file did not hear of (its own directory's are taken in as it commits)."""


class Projector:
    """Projects the store's events into SQL once each (see the module doc).

    ``lock`` is the manager's: every method runs under it. :attr:`store` is the store
    the switch has open, or ``None`` while it is off.
    """

    def __init__(
        self,
        shards: ShardSet,
        schema: Schema,
        lock: threading.RLock,
        *,
        syncing: bool,
        client_id: str,
        session_id: str,
    ) -> None:
        self.shards = shards
        self.bridge = Bridge(shards, schema)
        self.syncing = syncing
        self.store: Store | None = None
        self.last_error: str | None = None
        """Why SQL last fell behind the store; cleared once it caught up."""
        self.sql_head = 0
        """The journal's head while the store is off."""
        self._schema = schema
        self._lock = lock
        self._client_id = client_id
        self._session_id = session_id
        self._projected_through = 0
        self._in_flight: list[EventRecord] | None = None
        self._unsettled = False
        self._retry = RetryTimer(lock, self._retry_catch_up)
        self._closed = False
        self._setup_due = False
        self._broken: str | None = None
        """Where SQL's journal breaks, as the last reconcile found it."""
        self._unseen = False
        """The store file has not taken in SQL's history yet (:data:`UNSEEN`)."""

    def set_up_later(self, error: SqlUnavailableError) -> None:
        """SQL could not be migrated and checked as the manager opened (a shard away):
        the store takes commits meanwhile, and SQL is set up before it is written to."""
        self._setup_due = True
        self.last_error = str(error)

    def _ready(self) -> None:
        """Migrate SQL and check the shards' places, if that waited for SQL."""
        if self._setup_due:
            self.shards.upgrade(())
            check_placement(self.shards)
            self._setup_due = False

    # -- the store side -------------------------------------------------------------

    def attach(self, store: Store, *, unseen: bool = False) -> None:
        """Project ``store``'s events from now on, after catching SQL up with it;
        ``unseen``: the file is new in a directory used before (:data:`UNSEEN`)."""
        self.store = store
        if unseen:
            store.set_meta(UNSEEN, "1")
        self._unseen = unseen or bool(store.meta(UNSEEN))
        try:
            self.reconcile(None)
        except SqlError as exc:
            self._fell_behind(exc)
        if self.syncing:
            store.add_rebase_hook(self._confirmed)
        else:
            store.add_commit_hook(self._project)

    def detach(self) -> None:
        """Stop projecting (the store is being switched off); SQL's head is kept."""
        self.store = None
        self.sql_head = self.journal_head()

    def commit(self, store: Store, events: Sequence[Event]) -> list[EventRecord]:
        """Commit through ``store``: its commit hook projects the events into SQL. When
        another process committed to SQL with the store off, the store takes those
        events in first and the commit goes after them."""
        if self._unsettled:
            self.reconcile(None)
            self._unsettled = False
        if self._unseen:  # SQL's history first, if SQL answers now (else refused below)
            with contextlib.suppress(SqlError):
                self.reconcile(None)
        if self._broken is not None:  # still? Another process may have repaired SQL
            with contextlib.suppress(SqlError):
                self.reconcile(None)
        if self._broken is not None:
            # A commit now would take the place of an event lost in the gap, and the
            # events after it would then seem to follow it.
            raise ConfigError(f"{self._broken}. Commits wait until then")
        for _ in range(AHEAD_RETRIES):
            try:
                return self._commit_once(store, events)
            except SqlAheadError:
                # A writer that did not note its commit in the store file went first
                # (another directory's on the same SQL, or a note that failed): follow it.
                self.reconcile(None)
        return self._commit_once(store, events)

    def _commit_once(self, store: Store, events: Sequence[Event]) -> list[EventRecord]:
        try:
            if self.syncing:  # a synced store's commits stay pending, off SQL's way
                return store.commit(*events)
            return store.commit(*events, first=partial(self._store_off_commits, store))
        except BaseException as exc:
            settled = self._settle(exc)
            if settled is None:
                raise
            return settled
        finally:
            self._in_flight = None

    def _store_off_commits(self, store: Store, head: Position) -> list[EventRecord]:
        """SQL's events that store-off commits wrote after ``head``, which ``store``
        takes in before its commit (:func:`store_off_commits`)."""
        chain = store_off_commits(self.bridge, store, head)
        if chain:
            self._projected_through = max(self._projected_through, chain[-1].position.global_seq)
        return chain

    def last(self) -> tuple[int, int]:
        """The position key of the last event SQL should hold."""
        store = self.store
        assert store is not None
        return (store.confirmed_head if self.syncing else store.head).key

    def head(self) -> int:
        """The global position of the last committed (when syncing: confirmed) event:
        the store's, or SQL's journal's while the store is off."""
        store = self.store
        if store is None:
            return self.sql_head
        return (store.confirmed_head if self.syncing else store.head).global_seq

    def reconcile(self, progress: Progress | None) -> int:
        """Journal events the store lacks go to the store; store events SQL lacks go to
        SQL. Returns how many moved."""
        store = self.store
        if store is None:
            return 0
        self._ready()
        if self.syncing:
            # The sync server, not SQL's journal, brings a synced store what it lacks; SQL
            # holding events the store never confirmed would be another history.
            # SQL's head first, then the store's as it is now: a sync client in another
            # process commits to the store before it projects into SQL, so read in
            # this order SQL is never ahead of the store but by another history.
            sql_head = self.journal_head()
            store.refresh()
            confirmed = store.confirmed_head.global_seq
            if sql_head > confirmed:
                raise ConfigError(
                    f"SQL's journal reaches e{sql_head} but this synced store has confirmed "
                    f"only e{confirmed}: SQL holds another history (written before the "
                    "directory synced?); sync a new data directory, or export this one and "
                    "import it into a synced one"
                )
            moved = self._catch_up_sql(confirmed, progress)
            self._retry.reset()
            self.last_error = None
            return moved
        moved = 0
        self._broken = None
        missing = self.shards.journal(store.head.global_seq)
        if missing:
            check_one_history(self.shards, store, store.head.global_seq)
            chain = unbroken(missing, store.head)
            if len(chain) < len(missing):
                # Read shard by shard, a commit over several shards made meanwhile can
                # look cut off: look again with the shards locked against commits.
                missing = self.bridge.journal(store.head.global_seq)
                chain = unbroken(missing, store.head)
            if len(chain) < len(missing):
                self._journal_breaks(store.head if not chain else chain[-1].position, missing)
            if chain:
                moved += len(chain)
                store.ingest(chain)
        moved += self._catch_up_sql(store.head.global_seq, progress)
        if self._unseen:
            store.set_meta(UNSEEN, "")  # it has taken SQL's history in
            self._unseen = False
        self._retry.reset()
        self.last_error = self._broken  # caught up: what it could not take in, if anything
        return moved

    def replace_sql(self, progress: Progress | None) -> tuple[int, RebuiltFrom]:
        """Empty every shard and project the whole history again: the store's log up to
        :meth:`last`, or SQL's own journal with the store off. Returns the events and
        the source."""
        store = self.store
        source: Callable[[Sequence[EventRecord]], Sequence[EventRecord]] = whole_start
        if store is not None:
            if problems := store.check():
                raise StoreCorruptError(
                    f"the store is damaged ({problems[0]}), so SQL is not rebuilt from it: "
                    "repair the store first (pjai repair --side store rebuilds it, from SQL's "
                    "journal where its log is damaged)"
                )
            self.reconcile(None)
            last = self.last()
            logged = [e.record for e in store.events() if e.record.position.key <= last]
            source = partial(holding_journal, logged, last)
        records = self.bridge.replace_all(source, progress=progress)
        self._projected_through = records[-1].position.global_seq if records else 0
        if store is None:
            self.sql_head = self._projected_through  # the events past a gap are gone
        self._broken = self.last_error = None  # SQL holds the store's history alone now
        return len(records), "log" if store is not None else "journal"

    # -- the SQL side, with the store off ----------------------------------------------

    def append(
        self, events: Sequence[Event], store_file: FileHead
    ) -> tuple[list[EventRecord], set[str]]:
        """Commit ``events`` straight to SQL, journalled; returns the records and the
        tables they wrote (:func:`commit_store_off`)."""
        records, tables = commit_store_off(
            self.bridge,
            self._schema,
            events,
            store_file,
            client_id=self._client_id,
            session_id=self._session_id,
        )
        self.sql_head = records[-1].position.global_seq
        return records, tables

    def journal_head(self) -> int:
        """The highest global position any shard's journal holds."""
        heads = []
        for shard in self.shards:
            with shard.writer.connection("reading the journal") as conn:
                heads.append(journal.head(conn))
        return max(heads)

    def close(self) -> None:
        """Stop retrying."""
        self._closed = True
        self._retry.close()

    # -- hooks and catching up ------------------------------------------------------

    def _project(self, events: list[Materialized]) -> None:
        """The store's commit hook: project the commit into SQL before it commits."""
        try:
            self._ready()
            first = events[0].record
            if first.parent.global_seq > self._projected_through:
                self._catch_up_sql(first.parent.global_seq)
            # SQL must stand where this commit goes on: one restored from a backup while
            # this process was idle would otherwise get a gap it never fills.
            self.bridge.project(events, strict=True, follows=True)
            self._in_flight = [e.record for e in events]
            self._projected_through = events[-1].record.position.global_seq
        except (SqlUnavailableError, ConfigError) as exc:  # ConfigError: placement, in _ready
            if not self._setup_due and isinstance(exc, ConfigError):
                raise
            assert self.store is not None
            parent = events[0].record.parent.global_seq
            refuse_unseen_history(self.store, parent, exc, unseen=self._unseen)
            self._fell_behind(exc)

    def _confirmed(self, _result: object) -> None:
        """The store's rebase hook: confirmed events go to SQL, in order, once."""
        with self._lock:
            if self._closed or self.store is None:
                return
            try:
                self._catch_up_sql(self.store.confirmed_head.global_seq)
            except SqlError as exc:
                self._fell_behind(exc)

    def _settle(self, error: BaseException) -> list[EventRecord] | None:
        """After a store commit failed: if SQL already took its events, bring them over.

        Returns the records when the store took them from SQL's journal after all, so
        the commit did happen; ``None`` when SQL did not take them (nothing happened).
        """
        records = self._in_flight
        if records is None:
            return None
        self._projected_through = records[0].parent.global_seq
        self._unsettled = True
        try:
            self.reconcile(None)
        except PjaiError as again:
            error.add_note(
                f"SQL committed these events but the store could not ({again}); the store "
                "takes them from SQL's journal before the next commit or when reopened"
            )
            return None
        self._unsettled = False
        return records

    def _catch_up_sql(self, through: int, progress: Progress | None = None) -> int:
        """Project the store's events up to ``through`` that SQL has not applied."""
        store = self.store
        assert store is not None
        self._ready()

        def events(after: int) -> Iterator[EventRecord]:
            check_one_history(self.shards, store, after)
            for entry in store.events(after=Position(after)):
                if entry.record.position.global_seq > through:
                    return
                yield entry.record

        moved = self.bridge.catch_up(events, progress=progress, total=through)
        self._projected_through = through
        return moved

    def _journal_breaks(self, at: Position, missing: Sequence[EventRecord]) -> None:
        """SQL's journal holds events past a gap (a commit over several shards cut off
        between their commits): they are not taken in, and the gap is said."""
        self.last_error = self._broken = journal_break(at, missing)
        log.warning("%s", self.last_error)

    def _fell_behind(self, error: BaseException) -> None:
        self.last_error = str(error)
        log.warning("SQL primary is behind the store: %s", error)
        self._retry.schedule()

    def _retry_catch_up(self) -> None:
        """The retry timer's attempt, under the lock: catch SQL up with the store."""
        if self.store is None:
            return
        try:
            self.reconcile(None)
        except PjaiError as exc:
            self._fell_behind(exc)
        except Exception:  # a bug must not end the retries silently
            log.exception("catching SQL up failed")
            self._fell_behind(RuntimeError("catching SQL up failed; see the log"))
