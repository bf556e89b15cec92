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
:meth:`reconcile` can bring the store up to the journal when it is switched back on.
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
from pjai.hybrid.files import OFF_CLAIMED, OFF_HEAD, UNSEEN
from pjai.hybrid.recovery import RebuiltFrom
from pjai.schema.codec import History
from pjai.schema.event import Event, Materialized, Schema
from pjai.schema.records import ROOT, EventRecord, Position, session_of, stamp
from pjai.schema.types import Progress, utc_now
from pjai.sql import journal
from pjai.sql.rebalance import check_placement
from pjai.sql.shards import ShardSet
from pjai.store import Store
from pjai.store.log import FileHead, LockedFile

__all__ = ["MAX_BACKOFF_S", "RETRY_DELAYS_S", "Projector"]

RETRY_DELAYS_S = (0.2, 0.5, 1.0, 2.0)
MAX_BACKOFF_S = 30.0

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
        self._retry: threading.Timer | None = None
        self._backoff = RETRY_DELAYS_S[0]
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
        """SQL's events after ``head`` that store-off commits wrote, which ``store`` takes
        in before its commit (:meth:`Store.commit`'s ``first``). Called under the store
        file's write lock, which a store-off commit holds until it has noted its head in
        the file (or at least its places, just before SQL commits them: :meth:`append`):
        SQL's journal is read with its checkpoints locked as such a commit holds them, so
        none can go in between, and a commit never loses its place to one, however busy
        its writer."""
        if _store_off_head(store) <= head.global_seq:
            return []
        try:
            missing = self.bridge.journal(head.global_seq)
        except SqlUnavailableError:
            return []  # the commit hook then refuses the commit, saying why
        chain = _unbroken(missing, head)
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
            self._backoff = RETRY_DELAYS_S[0]
            self.last_error = None
            return moved
        moved = 0
        self._broken = None
        missing = self.shards.journal(store.head.global_seq)
        if missing:
            self._check_one_history(store, store.head.global_seq)
            chain = _unbroken(missing, store.head)
            if len(chain) < len(missing):
                # Read shard by shard, a commit over several shards made meanwhile can
                # look cut off: look again with the shards locked against commits.
                missing = self.bridge.journal(store.head.global_seq)
                chain = _unbroken(missing, store.head)
            if len(chain) < len(missing):
                self._journal_breaks(store.head if not chain else chain[-1].position, missing)
            if chain:
                moved += len(chain)
                store.ingest(chain)
        moved += self._catch_up_sql(store.head.global_seq, progress)
        if self._unseen:
            store.set_meta(UNSEEN, "")  # it has taken SQL's history in
            self._unseen = False
        self._backoff = RETRY_DELAYS_S[0]
        self.last_error = self._broken  # caught up: what it could not take in, if anything
        return moved

    def replace_sql(self, progress: Progress | None) -> tuple[int, RebuiltFrom]:
        """Empty every shard and project the whole history again: the store's log up to
        :meth:`last`, or SQL's own journal with the store off. Returns the events and
        the source."""
        store = self.store
        source: Callable[[Sequence[EventRecord]], Sequence[EventRecord]] = _whole_start
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
            source = partial(_holding_journal, logged, last)
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
        tables they wrote. The store file's write lock is held meanwhile, as a store-on
        commit holds it (store first, then SQL); refused while the file holds events SQL
        lacks: they would take the same places."""
        encoded = [self._schema.encode(event) for event in events]
        at = utc_now()

        def build(global_seq: int, history: History, file: LockedFile) -> list[Materialized]:
            # SQL's checkpoint, read under its lock, not what this process last saw: SQL
            # may have gone back (restored from a backup), and events placed after a
            # gap would be dropped as a cut-off commit's by the next repair.
            after = global_seq
            if file.head > after:
                raise ConfigError(
                    f"the store file holds events up to e{file.head} that SQL lacks (it has "
                    f"e{after}): a process with the store on committed them while SQL was "
                    "unavailable. Commit with the store on, which brings SQL up to it, or "
                    "wait until that process has"
                )
            noted = int(file.meta.get(OFF_HEAD) or 0)
            if noted > global_seq:
                # Those events are in another database, or nowhere: a commit here would
                # take their places, and they could never be taken in again.
                raise ConfigError(
                    f"commits made with the store off reached e{noted} in SQL, but SQL's "
                    f"journal ends at e{global_seq}: PJAI_SQL_SHARDS names another database "
                    "than they went to, or SQL was restored from an older backup. Point "
                    "PJAI_SQL_SHARDS at the database they went to; if they are lost, switch "
                    "the store on (pjai flags set use_livestore true), which commits after "
                    "the history it holds"
                )
            records = stamp(
                ((name, args) for name, _, args in encoded),
                after=Position(after),
                generation=0,
                client_id=self._client_id,
                session_id=session_of(self._session_id),
                at=at,
                codec=self._schema.codec,
                history=history,  # SQL's journal, as a store's commit follows its log
            )
            return [
                self._schema.materialize(record, payload)
                for record, (_, payload, _) in zip(records, encoded, strict=True)
            ]

        records: list[EventRecord] = []

        def claim(taken: Sequence[EventRecord]) -> None:
            # A store-on process that cannot reach SQL learns from the file that SQL's
            # history goes on past its own: it may not commit in those places. Noted
            # before SQL commits, so that a process killed between the two commits
            # leaves the note all the same. SQL's head as read under its lock is
            # committed history: the head after the last commit made with the store off,
            # as far as is known for sure.
            store_file.note_now(
                **{
                    OFF_HEAD: str(taken[0].parent.global_seq),
                    OFF_CLAIMED: str(taken[-1].position.global_seq),
                }
            )

        def note(meta: dict[str, str]) -> dict[str, str]:
            # Once SQL committed. Another commit's note may be there first (where another
            # writer took the lock at the claim), and this one's head is then not the last.
            head = max(records[-1].position.global_seq, int(meta.get(OFF_HEAD) or 0))
            return {OFF_HEAD: str(head)}

        with store_file.locked(note) as file:
            records, tables = self.bridge.append(partial(build, file=file), before_commit=claim)
        self.sql_head = records[-1].position.global_seq
        return records, tables | {journal.journal.name}

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
        if self._retry is not None:
            self._retry.cancel()

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
            self._refuse_unseen_history(events[0].record.parent.global_seq, exc)
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
            self._check_one_history(store, after)
            for entry in store.events(after=Position(after)):
                if entry.record.position.global_seq > through:
                    return
                yield entry.record

        moved = self.bridge.catch_up(events, progress=progress, total=through)
        self._projected_through = through
        return moved

    def _check_one_history(self, store: Store, position: int) -> None:
        """Refuse to catch SQL up from ``position`` (its checkpoint) when SQL's journal
        holds another event there than the store: the two histories went apart, and
        projecting the store's later events would hide it."""
        if position == 0:
            return
        ours = next(iter(store.events(after=Position(position - 1))), None)
        theirs = self.shards.event_at(position)
        if ours is None or theirs is None or ours.record.id == theirs:
            return
        raise SqlAheadError(
            f"SQL's journal holds event {theirs} at e{position}, where the store holds "
            f"{ours.record.id}: another process committed to SQL with the store switched "
            "off while this store's commits had not reached SQL. The two histories differ "
            "from there on (`pjai verify` compares them); SQL is not caught up past it"
        )

    def _journal_breaks(self, at: Position, missing: Sequence[EventRecord]) -> None:
        """SQL's journal holds events past a gap (a commit over several shards cut off
        between their commits): they are not taken in, and the gap is said."""
        after = [r for r in missing if r.position.key > at.key]
        self.last_error = self._broken = (
            f"SQL's journal breaks after {at}: it holds {len(after)} event(s) from "
            f"{after[0].position} on without the events before them (a commit over several "
            "shards was cut off between their commits). They are not in the store; `pjai "
            "verify` lists what differs, and `pjai repair --side sql` makes SQL hold the "
            "store's history again (dropping them)"
        )
        log.warning("%s", self.last_error)

    def _refuse_unseen_history(self, parent: int, error: BaseException) -> None:
        """With SQL away, refuse a commit after ``parent`` when commits made with the
        store off went past it (the store file says so), or may have (a file new in a
        directory used before, :data:`UNSEEN`): it would take their places."""
        store = self.store
        assert store is not None
        if self._unseen:
            raise ConfigError(
                "this store file is new in a data directory used before, and SQL's "
                "journal, which may hold events committed with the store off, has not "
                f"been read yet; it is read when SQL answers (now: {error}). Commit again "
                "then"
            ) from error
        off_head = _store_off_head(store)
        if off_head > parent:
            raise ConfigError(
                f"SQL's journal holds (or may hold) events up to e{off_head} committed with "
                "the store off, which this store has not taken in; it takes them in when "
                f"SQL answers (now: {error}). Commit again then"
            ) from error

    def _fell_behind(self, error: BaseException) -> None:
        self.last_error = str(error)
        log.warning("SQL primary is behind the store: %s", error)
        self._schedule_retry()

    def _schedule_retry(self) -> None:
        if self._closed or (self._retry is not None and self._retry.is_alive()):
            return
        delay, self._backoff = self._backoff, min(self._backoff * 2, MAX_BACKOFF_S)
        self._retry = threading.Timer(delay, self._retry_catch_up)
        self._retry.daemon = True
        self._retry.start()

    def _retry_catch_up(self) -> None:
        with self._lock:
            self._retry = None
            if self._closed or self.store is None:
                return
            try:
                self.reconcile(None)
            except PjaiError as exc:
                self._fell_behind(exc)
            except Exception:  # a bug must not end the retries silently
                log.exception("catching SQL up failed")
                self._fell_behind(RuntimeError("catching SQL up failed; see the log"))


def _store_off_head(store: Store) -> int:
    """How far SQL may hold commits made with the store off, as the store file heard."""
    return max(int(store.meta(key) or 0) for key in (OFF_HEAD, OFF_CLAIMED))


def _holding_journal(
    records: Sequence[EventRecord], last: tuple[int, int], journal: Sequence[EventRecord]
) -> Sequence[EventRecord]:
    """``records``, the store's log up to ``last``, to rebuild SQL from; refused when SQL's
    ``journal`` holds an event they lack that is not past a gap (those of a commit over
    several shards cut off between their commits, never acknowledged): emptying the
    journal would lose its last copy."""
    held = {record.id for record in records}
    lacking = [r for r in journal if r.position.key <= last and r.id not in held]
    if lacking:
        raise StoreCorruptError(
            f"SQL's journal holds {len(lacking)} event(s) the store's log lacks (the first "
            f"at {lacking[0].position}, {lacking[0].id}), so SQL is not rebuilt from the log: "
            "rebuilding it would lose them. Restore the data directory from a backup"
        )
    later = _unbroken(
        [r for r in journal if r.position.key > last], records[-1].position if records else ROOT
    )
    if later:
        raise ConfigError(
            f"SQL took {len(later)} event(s) from {later[0].position} on after the store had "
            "been brought up to it for the repair (another process committed with the store "
            "off): SQL is not rebuilt, which would lose them. Run the repair again; it takes "
            "them into the store first"
        )
    return records


def _whole_start(records: Sequence[EventRecord]) -> list[EventRecord]:
    """SQL's journal up to where it breaks, with the store off: the events past a gap
    are those of a commit over several shards cut off between their commits, never
    acknowledged (commits wait while the journal breaks). Kept, they would stay past a
    gap the store could never take in."""
    chain = _unbroken(records, records[0].parent) if records else []
    if len(chain) < len(records):
        log.warning(
            "SQL's journal breaks after %s: its %d later event(s), of a commit cut off "
            "between shards, are dropped",
            chain[-1].position if chain else records[0].parent,
            len(records) - len(chain),
        )
    return chain


def _unbroken(records: Sequence[EventRecord], head: Position) -> list[EventRecord]:
    """The records that continue ``head`` one after another, up to the first gap."""
    chain: list[EventRecord] = []
    last = head
    for record in records:
        if record.parent.key != last.key:
            break
        chain.append(record)
        last = record.position
    return chain
