"""The HybridDatabaseManager: one commit path over the reactive store and the SQL primary."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pjai.errors import ConfigError, SqlUnavailableError
from pjai.hybrid.bridge import Bridge
from pjai.hybrid.files import FLAGS_FILE, IDENTITY_FILE, STORE_FILE
from pjai.hybrid.flags import Flags
from pjai.hybrid.health import Health, check
from pjai.hybrid.identity import Identity
from pjai.hybrid.integrity import VerifyReport, verify
from pjai.hybrid.projector import Projector
from pjai.hybrid.quarantine import QuarantineReport, acknowledge, report
from pjai.hybrid.recovery import StoreRebuilt
from pjai.hybrid.repair import Repaired, Side, repair
from pjai.hybrid.retry import RETRY_DELAYS_S
from pjai.hybrid.switch import StoreSwitch
from pjai.resource import Resource
from pjai.schema import SCHEMA
from pjai.schema.codec import ColumnCodec
from pjai.schema.event import Event, Schema
from pjai.schema.records import EventRecord
from pjai.schema.types import Progress, new_id
from pjai.sql.engine import PoolConfig
from pjai.sql.rebalance import check_placement
from pjai.sql.repositories import MemoryRepository, PersonaRepository
from pjai.sql.shards import ShardSet, data_dir_urls
from pjai.store import LiveQuery, Row, Store
from pjai.store.query import Params, Query
from pjai.sync.client import SyncClient
from pjai.sync.transport import Connector

__all__ = ["HybridDatabaseManager"]

T = TypeVar("T")


class HybridDatabaseManager(Resource):
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

    The manager is a facade over three parts: the :class:`~pjai.hybrid.switch.StoreSwitch`
    opens and closes the store as the flags say, the :class:`~pjai.hybrid.projector.Projector`
    keeps SQL equal to the store's log, and its :class:`~pjai.hybrid.bridge.Bridge` writes
    events into SQL.
    """

    @classmethod
    def open(cls, data_dir: Path | str, **options: Any) -> HybridDatabaseManager:
        """Open the data directory's store and SQL primary (see the class doc)."""
        return cls(Path(data_dir), **options)

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
        sql_sealer: ColumnCodec | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.schema = schema
        self.flags = Flags(self.data_dir / FLAGS_FILE, environ)
        urls = list(sql_urls or data_dir_urls(self.data_dir, environ))
        self.shards = ShardSet(
            urls, schema, pool or PoolConfig.from_env(environ), sealer=sql_sealer
        )
        self.personas = PersonaRepository(self.shards)
        self.memories = MemoryRepository(self.shards)
        self.identity = Identity.load(self.data_dir / IDENTITY_FILE)
        self.session_id = new_id()
        self.syncing = self.flags["sync"]
        """Whether the store syncs through a sync server (the ``sync`` flag when opened)."""
        new_store = not (self.data_dir / STORE_FILE).exists()
        self._lock = threading.RLock()
        self._closed = False
        self._on_close: list[Callable[[], object]] = []
        self._projector = Projector(
            self.shards,
            schema,
            self._lock,
            syncing=self.syncing,
            client_id=self.identity.client_id,
            session_id=self.session_id,
        )
        self._switch = StoreSwitch(
            self.data_dir / STORE_FILE,
            schema=schema,
            flags=self.flags,
            identity=self.identity,
            projector=self._projector,
            lock=self._lock,
            rebuild_damaged=rebuild_damaged_store,
        )
        try:
            try:
                self.shards.upgrade(RETRY_DELAYS_S)
                check_placement(self.shards)
            except SqlUnavailableError as exc:
                if not self.flags["use_livestore"]:
                    raise
                # Offline first: the store takes commits, SQL catches up when it is back.
                self._projector.set_up_later(exc)
            self._switch.open(progress)
        except BaseException:
            self.close()
            raise
        if self.syncing and new_store and self.flags.stored("sync") is not True:
            self.flags.set("sync", True)  # a store's mode is fixed when it is made

    @property
    def store(self) -> Store | None:
        """The reactive store, or ``None`` while it is switched off."""
        return self._projector.store

    @property
    def use_livestore(self) -> bool:
        """Whether commits go through the reactive store."""
        return self.store is not None

    @property
    def store_path(self) -> Path:
        """Where the reactive store's file is."""
        return self._switch.store_path

    @property
    def bridge(self) -> Bridge:
        """What writes events into SQL, with its report for health."""
        return self._projector.bridge

    @property
    def last_error(self) -> str | None:
        """Why SQL last fell behind the store, until it caught up."""
        return self._projector.last_error

    @property
    def rebuilt(self) -> StoreRebuilt | None:
        """Set when the store file could not be opened and was rebuilt as it opened
        (``rebuild_damaged_store``)."""
        return self._switch.rebuilt

    def head(self) -> int:
        """The global position of the last committed (when syncing: confirmed) event."""
        return self._projector.head()

    def sync_client(
        self, connect: Connector, *, store_id: str, token: str = "", **options: Any
    ) -> SyncClient:
        """A :class:`~pjai.sync.SyncClient` for this data directory's store; not started.

        ``options`` go to the client (batch, ping_interval, backoff...). Events it
        confirms reach SQL through the bridge as soon as they are confirmed.
        """
        with self._lock:
            self._check_open()
            store = self._switch.synced_store(self.data_dir)
            return SyncClient(store, connect, store_id=store_id, token=token, **options)

    def commit(self, *events: Event) -> list[EventRecord]:
        """Commit ``events``: to the store and SQL, or to SQL alone with the store off."""
        with self._lock:
            self._check_open()
            self._switch.follow()
            return self._switch.commit(events)

    def query(self, query: Query, params: Params = None) -> list[Row]:
        """Read from the store, or from SQL with the store off (a single SQL primary)."""
        self._switch.follow()
        return self._switch.query(query, params)

    def live(self, query: Query, params: Params = None) -> LiveQuery:
        """A live query on the store, or on SQL (re-run after SQL commits) with it off.

        It follows the switch: turning the store off or on moves it, with its
        subscribers, to the other side.
        """
        self._switch.follow()
        return self._switch.live(query, params)

    def refresh(self) -> bool:
        """Take in what other processes changed: a flag flipped in ``flags.json`` (the
        store is then switched as it says) and commits to the store file, or to SQL with
        the store off; whether any commits came in. Live queries follow. A long-running
        owner (the web app) calls this periodically; it costs a file stat and one
        ``PRAGMA`` when nothing changed (with the store off, a look at SQL's journal).
        While turning the store off, as the flags say, is refused over quarantined
        events, it also reads whether they still wait, and switches once they do not.
        """
        with self._lock:
            self._check_open()
            self._switch.follow()
            self._switch.retry_held_on()
            store = self.store
            if store is None:
                return self._switch.refresh_sql()
        return store.refresh()

    def set_flag(self, name: str, value: bool) -> None:
        """Set a flag now and for later runs (``flags.json``)."""
        with self._lock:
            self._switch.set_flag(name, value)

    def catch_up(self, progress: Progress | None = None) -> int:
        """Bring SQL up to the store (and the store up to SQL's journal); events moved."""
        with self._lock:
            self._check_open()
            return self._projector.reconcile(progress)

    def compact_store(self) -> bool | None:
        """Rewrite the store file without freed pages, the store on or off
        (:meth:`StoreSwitch.compact`)."""
        with self._lock:
            self._check_open()
            return self._switch.compact()

    def health(self) -> Health:
        """Status, probe latency, lag, quarantine, pools and disk use of both sides."""
        return self._locked(check)

    def quarantine(self) -> QuarantineReport:
        """Quarantined events on either side that no one has acknowledged yet."""
        return self._locked(report)

    def acknowledge_quarantine(self) -> QuarantineReport:
        """Acknowledge every quarantined event so far; returns them. The records stay."""
        return self._locked(acknowledge)

    def verify(self, progress: Progress | None = None) -> VerifyReport:
        """Compare the store with SQL per table and persona (the store must be on)."""
        return self._locked(
            lambda m: verify(m.store, m.shards, m.schema, progress, syncing=m.syncing)
        )

    def repair(self, side: Side, progress: Progress | None = None) -> Repaired:
        """Rebuild one side from the event log (:func:`pjai.hybrid.repair.repair`)."""
        return self._locked(lambda _: repair(self._projector, self._switch, side, progress))

    def close(self) -> None:
        """Close the store and every pooled SQL connection."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._projector.close()
            self._switch.close()
            self.shards.dispose()
            for release in self._on_close:
                release()

    def on_close(self, release: Callable[[], object]) -> None:
        """Call ``release`` when the manager closes (after the store and SQL): for what
        was opened for it, such as the key ring its codec uses."""
        self._on_close.append(release)

    def _locked(self, do: Callable[[HybridDatabaseManager], T]) -> T:
        with self._lock:
            self._check_open()
            return do(self)

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigError("the manager is closed")
