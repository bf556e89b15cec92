"""The HybridDatabaseManager: one commit path over the reactive store and the SQL primary."""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeVar

import msgspec

from pjai.errors import (
    ConfigError,
    PjaiError,
    QueryError,
    SqlError,
    SqlUnavailableError,
    StoreCorruptError,
    StoreModeError,
)
from pjai.hybrid.bridge import Bridge
from pjai.hybrid.files import FLAGS_FILE, IDENTITY_FILE, STORE_FILE
from pjai.hybrid.flags import Flags
from pjai.hybrid.health import Health, check
from pjai.hybrid.identity import Identity
from pjai.hybrid.integrity import VerifyReport, verify
from pjai.hybrid.quarantine import QuarantineReport, acknowledge, report
from pjai.hybrid.recovery import StoreRebuilt, rebuild_store_file
from pjai.hybrid.sqllive import ParkedHost, SqlLiveHost, SqlQuery, tables_of
from pjai.schema import SCHEMA
from pjai.schema.event import Event, Schema
from pjai.schema.records import EventRecord, Position
from pjai.schema.types import new_id, utc_now
from pjai.sql import journal, migrate
from pjai.sql.engine import PoolConfig, default_url
from pjai.sql.rebalance import misplaced
from pjai.sql.repositories import MemoryRepository, PersonaRepository
from pjai.sql.shards import Shard, ShardSet, shard_urls
from pjai.store import LiveQuery, Progress, Row, Store
from pjai.store.query import Params, Query, prepare
from pjai.sync.client import SyncClient
from pjai.sync.transport import Connector

__all__ = ["HybridDatabaseManager", "Repaired"]

RETRY_DELAYS_S = (0.2, 0.5, 1.0, 2.0)
MAX_BACKOFF_S = 30.0

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Repaired:
    """What :meth:`HybridDatabaseManager.repair` did.

    ``source``: what the side was rebuilt from (``log``: the store's event log;
    ``journal``: SQL's journal, the store's log being damaged). ``rebuilt`` says more
    when a damaged store file was replaced by a new one.
    """

    side: Literal["sql", "store"]
    events: int
    source: Literal["log", "journal"]
    rebuilt: StoreRebuilt | None = None


class HybridDatabaseManager:
    """Opens the reactive store and the SQL primary of a data directory and ties them.

    With the store on (``use_livestore``, the default), :meth:`commit` goes through the
    store and the bridge projects the events into SQL inside the same commit: a
    refusal by SQL rolls the commit back and raises; SQL being unreachable does not,
    the bridge catches up once it is back (health shows the lag). With the store off,
    commits write SQL directly, still journalling every event, and turning the store
    on again catches it up from the journal.

    With the ``sync`` flag on when the data directory is opened, the store is a synced
    one: commits stay pending until the sync server confirms them (:meth:`sync_client`),
    and the bridge projects confirmed events only, in the server's order, once each.
    A synced data directory keeps the store on.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        sql_urls: Sequence[str] | None = None,
        pool: PoolConfig | None = None,
        schema: Schema = SCHEMA,
        environ: Mapping[str, str] | None = None,
        progress: Progress | None = None,
        rebuild_damaged_store: bool = False,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.schema = schema
        self.flags = Flags(self.data_dir / FLAGS_FILE, environ)
        urls = list(sql_urls or shard_urls(environ) or [default_url(self.data_dir)])
        self.shards = ShardSet(urls, schema, pool or PoolConfig.from_env(environ))
        self.personas = PersonaRepository(self.shards)
        self.memories = MemoryRepository(self.shards)
        self.bridge = Bridge(self.shards, schema)
        self.identity = Identity.load(self.data_dir / IDENTITY_FILE)
        self.session_id = new_id()
        self.last_error: str | None = None
        self._lock = threading.RLock()
        self._store: Store | None = None
        self._sql_live = SqlLiveHost(self.shards.shards[0], frozenset(self.schema.tables()))
        self._live: weakref.WeakKeyDictionary[LiveQuery, tuple[Query, Params]] = (
            weakref.WeakKeyDictionary()
        )
        self._projected_through = 0
        self._in_flight: list[EventRecord] | None = None
        self._unsettled = False
        self._parked = ParkedHost()
        self._sql_head = 0
        self._retry: threading.Timer | None = None
        self._backoff = RETRY_DELAYS_S[0]
        self._closed = False
        self._rebuild_damaged = rebuild_damaged_store
        self.rebuilt: StoreRebuilt | None = None
        """Set when the store file could not be opened and was rebuilt as it opened
        (``rebuild_damaged_store``)."""
        self.syncing = self.flags["sync"]
        """Whether the store syncs through a sync server (the ``sync`` flag when opened)."""
        try:
            if self.syncing and not self.flags["use_livestore"]:
                raise ConfigError(
                    "the sync flag needs the reactive store: syncing works on its event "
                    "log; turn use_livestore on or sync off"
                )
            for shard in self.shards:
                _with_retries(partial(_migrate, shard), "migrating SQL")
            if len(self.shards) > 1 and (wrong := misplaced(self.shards)):
                raise ConfigError(
                    f"{len(wrong)} persona(s) are stored on another shard than this shard "
                    f"list gives them (first: {wrong[0][0]!r} on shard {wrong[0][1].index}, "
                    f"belongs on {wrong[0][2].index}); run `pjai shards rebalance` first"
                )
            if self.flags["use_livestore"]:
                self._start_store(progress)
            else:
                self._stop_store(progress)
        except BaseException:
            self.close()
            raise

    @classmethod
    def open(cls, data_dir: Path | str, **options: Any) -> HybridDatabaseManager:
        """Open the data directory's store and SQL primary (see the class doc)."""
        return cls(Path(data_dir), **options)

    # -- state of the two sides --------------------------------------------------

    @property
    def store(self) -> Store | None:
        """The reactive store, or ``None`` while it is switched off."""
        return self._store

    @property
    def use_livestore(self) -> bool:
        """Whether commits go through the reactive store."""
        return self._store is not None

    @property
    def store_path(self) -> Path:
        """Where the reactive store's file is."""
        return self.data_dir / STORE_FILE

    def head(self) -> int:
        """The global position of the last committed (when syncing: confirmed) event."""
        if self._store is None:
            return self._sql_head
        return (self._store.confirmed_head if self.syncing else self._store.head).global_seq

    def sync_client(
        self, connect: Connector, *, store_id: str, token: str = "", **options: Any
    ) -> SyncClient:
        """A :class:`~pjai.sync.SyncClient` for this data directory's store; not started.

        ``options`` go to the client (batch, ping_interval, backoff...). Events it
        confirms reach SQL through the bridge as soon as they are confirmed.
        """
        with self._lock:
            self._check_open()
            if not self.syncing or self._store is None:
                raise ConfigError(
                    f"{self.data_dir} does not sync: a data directory syncs when the sync "
                    "flag is on as it is first opened (`pjai flags set sync true` on a new "
                    "directory, or PJAI_FLAG_SYNC=true)"
                )
            return SyncClient(self._store, connect, store_id=store_id, token=token, **options)

    # -- commands ----------------------------------------------------------------

    def commit(self, *events: Event) -> list[EventRecord]:
        """Commit ``events``: to the store and SQL, or to SQL alone with the store off."""
        with self._lock:
            self._check_open()
            self._follow_flags()
            store = self._store
            if store is None:
                return self._commit_sql(events) if events else []
            if self._unsettled:
                self._reconcile(None)
                self._unsettled = False
            try:
                return store.commit(*events)
            except BaseException as exc:
                settled = self._settle(exc)
                if settled is None:
                    raise
                return settled
            finally:
                self._in_flight = None

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
            self._reconcile(None)
        except PjaiError as again:
            error.add_note(
                f"SQL committed these events but the store could not ({again}); the store "
                "takes them from SQL's journal before the next commit or when reopened"
            )
            return None
        self._unsettled = False
        return records

    def query(self, query: Query, params: Params = None) -> list[Row]:
        """Read from the store, or from SQL with the store off (a single SQL primary)."""
        self._follow_flags()
        store = self._store
        if store is not None:
            return store.query(query, params)
        return self._sql_reader().query(query, params)

    def live(self, query: Query, params: Params = None) -> LiveQuery:
        """A live query on the store, or on SQL (re-run after SQL commits) with it off.

        It follows the switch: turning the store off or on moves it, with its
        subscribers, to the other side.
        """
        self._follow_flags()
        store = self._store
        live = (
            store.live(query, params)
            if store is not None
            else self._sql_reader().live(query, params)
        )
        self._live[live] = (query, params)
        return live

    def set_flag(self, name: str, value: bool) -> None:
        """Set a flag now and for later runs (``flags.json``)."""
        with self._lock:
            previous = self.flags[name]
            state = self.flags.set(name, value)
            if state.source == "environment" and state.value != value:
                self.flags.set(name, previous)
                raise ConfigError(
                    f"flag {name} is set to {state.value} by the environment, which wins "
                    "over the flags file; change the environment variable instead"
                )
            try:
                self._follow_flags(force=True)
            except BaseException:
                self.flags.set(name, previous)  # the switch did not happen
                raise

    def catch_up(self, progress: Progress | None = None) -> int:
        """Bring SQL up to the store (and the store up to SQL's journal); events moved."""
        with self._lock:
            self._check_open()
            return self._reconcile(progress)

    def health(self) -> Health:
        """Status, probe latency, lag, quarantine, pools and disk use of both sides."""
        with self._lock:
            self._check_open()
            return check(self)

    def quarantine(self) -> QuarantineReport:
        """Quarantined events on either side that no one has acknowledged yet."""
        with self._lock:
            self._check_open()
            return report(self)

    def acknowledge_quarantine(self) -> QuarantineReport:
        """Acknowledge every quarantined event so far; returns them. The records stay."""
        with self._lock:
            self._check_open()
            return acknowledge(self)

    def verify(self, progress: Progress | None = None) -> VerifyReport:
        """Compare the store with SQL per table and persona (the store must be on)."""
        with self._lock:
            self._check_open()
            if self._store is None:
                raise ConfigError("verify compares the store with SQL; switch the store on")
            if self.syncing and (pending := self._store.pending_count):
                raise ConfigError(
                    f"{pending} event(s) wait for the sync server; SQL holds confirmed "
                    "events only, so verify once they are confirmed (`pjai sync status`)"
                )
            return verify(self._store, self.shards, self.schema, progress)

    def repair(self, side: Literal["sql", "store"], progress: Progress | None = None) -> Repaired:
        """Rebuild one side from the event log.

        ``sql``: empty every shard (rows, journal, checkpoints) and project the whole
        log again. ``store``: rebuild the store's state from its log; a store file that
        SQLite finds damaged is rebuilt in a new file instead, from its log if that reads
        whole, else from SQL's journal (:mod:`pjai.hybrid.recovery`). Events only one
        side has are first brought to the other.
        """
        with self._lock:
            self._check_open()
            if side not in ("sql", "store"):
                raise ConfigError(f"repair rebuilds 'sql' or 'store', not {side!r}")
            store = self._store
            if side == "store":
                if store is None:
                    raise ConfigError("the store is switched off; switch it on to repair it")
                if problems := store.check():
                    self._store = None
                    store.close()
                    rebuilt = self._rebuild_store_file(problems, progress)
                    self._start_store(progress)
                    return Repaired("store", rebuilt.events, rebuilt.source, rebuilt)
                self._reconcile(None)
                return Repaired("store", store.rebuild(progress), "log")
            if store is not None:
                self._reconcile(None)
                records: list[EventRecord] = [
                    e.record for e in store.events() if e.record.position.key <= self._last()
                ]
            else:
                records = self.shards.journal()
            self.bridge.replace_all(records, progress=progress)
            self._projected_through = records[-1].position.global_seq if records else 0
            return Repaired("sql", len(records), "log" if store is not None else "journal")

    # -- lifecycle ---------------------------------------------------------------

    def close(self) -> None:
        """Close the store and every pooled SQL connection."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._retry is not None:
                self._retry.cancel()
            self._sql_live.close()
            if self._store is not None:
                self._store.close()
                self._store = None
            self.shards.dispose()

    def __enter__(self) -> HybridDatabaseManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigError("the manager is closed")

    def _follow_flags(self, *, force: bool = False) -> None:
        with self._lock:
            if not (self.flags.refresh() or force):
                return
            wanted = self.flags["use_livestore"]
            if wanted and self._store is None:
                self._start_store(None)
                self._move_live_queries()
            elif not wanted and self._store is not None:
                self._stop_store(None)

    def _move_live_queries(self) -> None:
        for live, (query, params) in list(self._live.items()):
            if self._store is not None:
                live._move(self._store, prepare(query, params, live=True))
            elif len(self.shards) == 1:
                live._move(self._sql_live, SqlQuery(query, params, tables_of(query)))
            else:
                # Ad-hoc SQL over several shards is not possible: the query keeps its last
                # result and its subscribers until the store is back.
                live._move(self._parked, live._prepared)

    def _start_store(self, progress: Progress | None) -> None:
        store = self._open_store(progress)
        self._store = store
        self.identity.adopt(store.client_id)
        try:
            self._reconcile(progress)
        except SqlError as exc:
            self._fell_behind(exc)
        if self.syncing:
            store.add_rebase_hook(self._confirmed)
        else:
            store.add_commit_hook(self._project)

    def _open_store(self, progress: Progress | None) -> Store:
        try:
            return Store.open(
                self.store_path, schema=self.schema, sync=self.syncing, progress=progress
            )
        except StoreCorruptError as exc:
            if not self._rebuild_damaged:
                raise
            self.rebuilt = self._rebuild_store_file([str(exc)], progress)
            return Store.open(
                self.store_path, schema=self.schema, sync=self.syncing, progress=progress
            )
        except StoreModeError as exc:
            raise ConfigError(
                f"the sync flag is {'on' if self.syncing else 'off'} but {self.store_path} "
                f"was made {'standalone' if self.syncing else 'to sync'}; a store's mode is "
                "fixed when it is made: set the flag back, or export this directory and "
                "import it into a new one"
            ) from exc

    def _rebuild_store_file(self, problems: list[str], progress: Progress | None) -> StoreRebuilt:
        rebuilt = rebuild_store_file(
            self.store_path,
            shards=self.shards,
            schema=self.schema,
            sync=self.syncing,
            client_id=self.identity.client_id,
            problems=problems,
            progress=progress,
        )
        log.warning(
            "rebuilt the damaged store file from %s; the damaged file is kept as %s",
            "its event log" if rebuilt.source == "log" else "SQL's journal",
            rebuilt.damaged_copy,
        )
        return rebuilt

    def _last(self) -> tuple[int, int]:
        """The position key of the last event SQL should hold."""
        store = self._store
        assert store is not None
        return (store.confirmed_head if self.syncing else store.head).key

    def _confirmed(self, _result: object) -> None:
        """The store's rebase hook: confirmed events go to SQL, in order, once."""
        with self._lock:
            if self._closed or self._store is None:
                return
            try:
                self._catch_up_sql(self._store.confirmed_head.global_seq)
            except SqlError as exc:
                self._fell_behind(exc)

    def _stop_store(self, progress: Progress | None) -> None:
        """Turn the store off: SQL must first hold every event the store has."""
        if self.syncing:
            raise ConfigError(
                "this data directory syncs, which needs the reactive store; turn the sync "
                "flag off (and reopen) before switching the store off"
            )
        running = self._store
        store = running
        if store is None and self.store_path.exists():
            store = self._open_store(progress)
        if store is not None:
            self._store = store
            try:
                self._reconcile(progress)
            except SqlError as exc:
                if running is None:
                    self._store = None
                    store.close()
                raise SqlUnavailableError(
                    f"cannot switch the reactive store off: SQL does not have all its "
                    f"events yet and cannot take them now ({exc})"
                ) from exc
        self._sql_head = self._journal_head()
        self._store = None
        self._move_live_queries()
        if store is not None:
            store.close()

    def _reconcile(self, progress: Progress | None) -> int:
        """Journal events the store lacks go to the store; store events SQL lacks go to SQL."""
        store = self._store
        if store is None:
            return 0
        if self.syncing:
            # The sync server, not SQL's journal, brings a synced store what it lacks; SQL
            # holding events the store never confirmed would be another history.
            confirmed = store.confirmed_head.global_seq
            if (sql_head := self._journal_head()) > confirmed:
                raise ConfigError(
                    f"SQL's journal reaches e{sql_head} but this synced store has confirmed "
                    f"only e{confirmed}: SQL holds another history (written before the "
                    "directory synced?); sync a new data directory, or export this one and "
                    "import it into a synced one"
                )
            moved = self._catch_up_sql(confirmed, progress)
            self._backoff = RETRY_DELAYS_S[0]
            return moved
        moved = 0
        missing = self.shards.journal(store.head.global_seq)
        if missing:
            moved += len(missing)
            store.ingest(missing)
        moved += self._catch_up_sql(store.head.global_seq, progress)
        self._backoff = RETRY_DELAYS_S[0]
        return moved

    def _catch_up_sql(self, through: int, progress: Progress | None = None) -> int:
        """Project the store's events up to ``through`` that SQL has not applied."""
        store = self._store
        assert store is not None

        def events(after: int) -> Iterator[EventRecord]:
            for entry in store.events(after=Position(after)):
                if entry.record.position.global_seq > through:
                    return
                yield entry.record

        moved = self.bridge.catch_up(events, progress=progress, total=through)
        self._projected_through = through
        return moved

    def _project(self, records: list[EventRecord]) -> None:
        """The store's commit hook: project the commit into SQL before it commits."""
        try:
            if records[0].parent.global_seq > self._projected_through:
                self._catch_up_sql(records[0].parent.global_seq)
            self.bridge.project(records, strict=True)
            self._in_flight = records
            self._projected_through = records[-1].position.global_seq
        except SqlUnavailableError as exc:
            self._fell_behind(exc)

    def _commit_sql(self, events: Sequence[Event]) -> list[EventRecord]:
        encoded = [self.schema.encode(event) for event in events]
        at = utc_now()

        def build(global_seq: int) -> list[EventRecord]:
            head = Position(max(global_seq, self._sql_head))
            records: list[EventRecord] = []
            for name, _payload, args in encoded:
                position = head.next(0)
                records.append(
                    EventRecord(
                        id=new_id(),
                        name=name,
                        args=msgspec.Raw(args),
                        position=position,
                        parent=head,
                        client_id=self.identity.client_id,
                        session_id=self.session_id,
                        at=at,
                    )
                )
                head = position
            return records

        records, tables = self.bridge.append(build)
        self._sql_head = records[-1].position.global_seq
        self._sql_live.changed(tables | {journal.journal.name})
        return records

    def _journal_head(self) -> int:
        heads = []
        for shard in self.shards:
            with shard.writer.connection("reading the journal") as conn:
                heads.append(journal.head(conn))
        return max(heads)

    def _sql_reader(self) -> SqlLiveHost:
        if len(self.shards) > 1:
            raise QueryError(
                "ad-hoc queries over several SQL shards are not supported with the store "
                "off; use the repositories (manager.personas, manager.memories)"
            )
        return self._sql_live

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
            if self._closed or self._store is None:
                return
            try:
                self._reconcile(None)
                self.last_error = None
            except PjaiError as exc:
                self._fell_behind(exc)
            except Exception:  # a bug must not end the retries silently
                log.exception("catching SQL up failed")
                self._fell_behind(RuntimeError("catching SQL up failed; see the log"))


def _migrate(shard: Shard) -> str:
    with shard.writer.translating(f"migrating {shard.url}"):
        return migrate.upgrade(shard.engine)


def _with_retries(action: Callable[[], T], doing: str) -> T:
    """Run ``action``, retrying a few times while SQL is unavailable."""
    for delay in (*RETRY_DELAYS_S, None):
        try:
            return action()
        except SqlUnavailableError:
            if delay is None:
                raise
            log.info("%s: SQL unavailable, retrying in %.1f s", doing, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")
