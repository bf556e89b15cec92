"""Syncing a data directory through a sync server, and what it last saw.

:func:`connect` runs the sync client in the foreground and writes its status to the
data directory's status file after every change; :func:`sync_status` reads that file
and the store, so it works whether or not a client is running.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import operator
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit, urlunsplit

import apsw
import msgspec
from sqlalchemy import select

from pjai.app.datadir import DataDir
from pjai.app.erasedkeys import destroy_replaced_keys
from pjai.app.eventlog import event_log, pending_erasures
from pjai.app.forgetting import ForgetGone
from pjai.app.keysync import sync_keys
from pjai.app.privacy import finish_rewrites, rewrites_due
from pjai.errors import ConfigError, PjaiError
from pjai.files import replace_text
from pjai.hybrid import HybridDatabaseManager
from pjai.resource import Resource
from pjai.schema import PersonaErased
from pjai.schema.tables import personas
from pjai.security import FieldCodec, KeyRing
from pjai.store import Progress
from pjai.sync.client import STORE_KEY, SyncClient, SyncStatus
from pjai.sync.protocol import Peer
from pjai.sync.websocket import websocket_connector

__all__ = [
    "KEYS_EVERY_S",
    "KEYS_SOON_S",
    "KeysIn",
    "PeerView",
    "RejectedEvent",
    "SyncLock",
    "SyncOutcome",
    "SyncReport",
    "Tending",
    "connect",
    "sync_conflicts",
    "sync_status",
    "sync_url",
    "tend",
    "write_status",
]


log = logging.getLogger(__name__)


def sync_url(url: str) -> str:
    """The WebSocket URL of a server given as ``http(s)://host:port`` or ``ws(s)://...``."""
    schemes = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises on a port that is not a number from 0 to 65535
    except ValueError as exc:
        raise ConfigError(f"{url!r} is not a sync server URL like http://host:8765: {exc}") from exc
    if parts.scheme not in schemes or not parts.hostname:
        raise ConfigError(f"{url!r} is not a sync server URL like http://host:8765")
    path = parts.path if parts.path not in ("", "/") else "/sync"
    return urlunsplit((schemes[parts.scheme], parts.netloc, path, parts.query, ""))


class SyncLock(Resource):
    """One sync client per data directory: its ``sync.lock`` locked while one runs
    (``pjai sync connect``, or the web app's); the kernel lets go when the process
    ends, however it ends, so no stale lock is left behind."""

    def __init__(self, data_dir: DataDir) -> None:
        path = data_dir.sync_lock_path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = open(path, "a")  # noqa: SIM115  # held until close()
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.close()
            running = sync_status(data_dir).pid
            who = f"process {running}" if running is not None else "another process"
            raise ConfigError(
                f"{who} syncs this data directory: stop it first, so that one client "
                "speaks for the store"
            ) from None

    def close(self) -> None:
        """Let go of the lock."""
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    """How a :func:`connect` run ended."""

    status: SyncStatus
    store_id: str
    level: bool
    """Whether it got level with the server (with ``once``)."""


@dataclass(frozen=True, slots=True)
class PeerView:
    """Another instance working on the same store now, as the sync server last said."""

    name: str
    state: str
    client_id: str
    last_seen: str
    """The server's time of the last message from it (ISO 8601, UTC)."""
    detail: dict[str, str]

    def __str__(self) -> str:
        return f"{self.name} ({self.state}, seen {self.last_seen[11:19]} UTC)"


@dataclass(frozen=True, slots=True)
class SyncReport:
    """The sync of a data directory, from its store and the status file.

    ``state`` is the running client's state, or ``not running``; ``last_state`` the
    last one the status file recorded. ``in_step``: a client is online, this store has
    nothing pending and nothing to pull as far as the client last heard.
    """

    in_step: bool
    state: str
    last_state: str | None
    url: str | None
    store_id: str | None
    server_head: int | None
    confirmed_head: int
    pending: int
    rejected: int
    quarantined: int
    """Confirmed events this store could not apply (``pjai doctor`` lists them)."""
    lag: int | None
    last_error: str | None
    reconnects: int
    read_only: bool
    updated_at: str | None
    peers: list[PeerView]
    """Other instances on the store now (``pjai sync connect --name``; empty when no
    client runs here or the server does not relay presence)."""
    pid: int | None = None
    """The process running the client (``pjai sync connect`` or a web app), if one runs."""


@dataclass(frozen=True, slots=True)
class RejectedEvent:
    """A local event the sync rejected: which event, when, why and which event won."""

    id: str
    name: str
    at: datetime
    reason: str | None


def connect(
    data_dir: DataDir,
    url: str,
    *,
    token: str = "",
    store_id: str | None = None,
    once: bool = False,
    timeout: float | None = None,
    report: Callable[[SyncStatus], object] | None = None,
    progress: Progress | None = None,
    name: str | None = None,
    stop: threading.Event | None = None,
) -> SyncOutcome:
    """Sync ``data_dir`` through the server at ``url`` until stopped (SIGINT, SIGTERM,
    ``stop`` set by another thread, ``timeout`` seconds) or, with ``once``, until level
    with the server.

    A new data directory is made a synced one. Each status change goes to the status
    file and to ``report``. ``store_id`` defaults to the store it synced with before,
    else ``default``. With a ``name`` the client announces itself to the other
    instances on the store (presence) and the status file lists theirs.
    """
    ws_url = sync_url(url)
    joined = False
    with contextlib.ExitStack() as stack:
        # Held until the directory is open: an import that found it empty meanwhile
        # would take what is made here for its own, and this, failing, take its files.
        with data_dir.writing():
            flags = data_dir.flags()
            stored = flags.stored("sync")
            new = not data_dir.store_path.exists()
            before = [file.name for file in data_dir.existing()]
            if new:

                def unmake() -> None:
                    # A new directory that never reached the server and holds nothing
                    # of its own was not made at all.
                    if not joined:
                        _unmake(data_dir, before, stored)

                stack.callback(unmake)
                if not flags["sync"]:
                    flags.set("sync", True)  # a new directory: make it a synced one
            stack.enter_context(SyncLock(data_dir))
            manager = stack.enter_context(data_dir.open(progress=progress))
        assert manager.store is not None
        chosen = store_id or manager.store.meta(STORE_KEY) or "default"
        codec = manager.schema.codec
        keys_in = None
        if isinstance(codec, FieldCodec):  # the other devices need the keys first
            ring = codec.keys
            keys_in = KeysIn(data_dir, manager, ring, url, token, chosen)
            try:
                keys_in()
            except PjaiError as exc:  # offline first: the next exchange tries again
                log.warning("exchanging keys with the sync server: %s", exc)
        tick = Tending(keys_in, ForgetGone(data_dir, manager))
        tick.drop_gone()

        client = manager.sync_client(
            websocket_connector(ws_url, token), store_id=chosen, presence_name=name
        )

        def seen(status: SyncStatus) -> None:
            write_status(data_dir, status, ws_url, chosen, client.presence.peers)
            if report is not None:
                report(status)

        client.presence.on_peers(
            lambda peers: write_status(data_dir, client.status, ws_url, chosen, peers)
        )

        try:
            level = asyncio.run(_run(client, seen, once=once, limit=timeout, tick=tick, stop=stop))
            if keys_in is not None:
                keys_in.compact_erased()
            tick.drop_gone()
        finally:
            store = manager.store
            joined = store.meta(STORE_KEY) is not None or store.head.global_seq > 0
        return SyncOutcome(client.status, chosen, level)


class KeysIn:
    """Key exchanges while a directory syncs (:func:`sync_keys`): keys made here go
    out, others' come in. Events that arrived before their key were refused: once it is
    here they apply (the store and SQL are rebuilt from the log). A persona erased on
    another device: its keys are destroyed at once, and its rows, once its erasure
    event is here, leave no page behind (the files are compacted), whether the event
    or the key's deletion came first. An erasure made here that waited for the server
    is finished the same way once the server confirms it.

    When to compact is decided from what this process saw; what is owed lasts in the
    data directory (:mod:`pjai.app.erasing`): a persona is marked before the exchange
    destroys its keys, and the mark goes once the files are rewritten without its rows
    (:func:`~pjai.app.privacy.finish_rewrites`), so that a process stopped in between
    leaves it to the next opening of the directory. (An erasure event that came before
    its keys' deletion needs no mark: the keys still held tell it.)"""

    def __init__(
        self,
        data_dir: DataDir,
        manager: HybridDatabaseManager,
        ring: KeyRing,
        url: str,
        token: str,
        store_id: str,
    ) -> None:
        self._data_dir, self._manager, self._ring = data_dir, manager, ring
        self._url, self._token, self._store_id = url, token, store_id
        self._erased: set[str] = set()
        """Personas erased elsewhere whose rows may still be in freed pages here."""
        owed = pending_erasures(manager) or rewrites_due(data_dir, manager)
        self._compacted: set[str] | None = None if owed else self._erased_keys()
        """The erased keys as of the last compaction (none yet: an erasure owed one as
        this began, waiting for the server, or marked by a process that stopped or
        could not rewrite a file then): a key erased since (here, while connected or
        not, or by another device) calls for another."""
        self._live = self._personas()
        """The personas held as of the last compaction: one gone since (its erasure
        event came, maybe before its key's deletion) calls for another."""
        self._erasures = self._erasure_events()
        """The erasure events of the log as of the last compaction: one come since calls
        for another, also when its persona's id is held again (a persona given it anew,
        whose creation came with the erasure)."""
        self._exchanged = self._erased_keys(), set(self._live), set(self._erasures)
        """The erased keys, the personas held and the erasure events of the log as of the
        last exchange (:meth:`due`)."""

    def __call__(self) -> None:
        keys, live, erasures = self._erased_keys(), self._personas(), self._erasure_events()
        self._exchanged = keys, live, erasures  # before the exchange: one meanwhile is due
        shared = sync_keys(
            self._ring,
            self._url,
            token=self._token,
            store_id=self._store_id,
            directory=self._data_dir.path,
        )
        if shared.erased_here:  # destroyed by this exchange: nothing more to tell
            came = {k.key_id for k in self._ring.erased() if k.scope in shared.erased_here}
            self._exchanged = keys | came, live, erasures
        store = self._manager.store
        assert store is not None
        if shared.came and store.count_quarantined():
            self._manager.repair("store")
            self._manager.repair("sql")
        self._erased.update(shared.erased_here)
        self.compact_erased()

    def due(self) -> bool:
        """Whether an erasure calls for an exchange before the next regular one: a key
        erased since the last exchange (here, by any process: the ring reads its file
        anew), a persona held then gone (its erasure event came from another device,
        whose key's deletion other devices should have soon), or an erasure event come
        while its persona's id is held again (a persona given it anew: the erased one's
        keys held here go at the exchange)."""
        keys, live, erasures = self._exchanged
        return (
            self._erased_keys() != keys
            or not live <= self._personas()
            or not self._erasure_events() <= erasures
        )

    def _erased_keys(self) -> set[str]:
        return {k.key_id for k in self._ring.erased()}

    def _personas(self) -> set[str]:
        return {row.id for row in self._manager.query(select(personas.c.id))}

    def _erasure_events(self) -> set[str]:
        store = self._manager.store
        assert store is not None
        return {entry.record.id for entry in store.events(named=(PersonaErased.NAME,))}

    def compact_erased(self) -> None:
        """Compact the store and SQL when a key was erased since the last compaction, or
        the erasure event of a persona erased elsewhere has arrived; never while an
        erasure made here waits for the server (its event keeps the deleted rows until
        it is confirmed). Once compacted, the erasures that owed it are finished
        (:func:`~pjai.app.privacy.finish_rewrites`). First, the keys an erased persona
        left beside a persona given her id again are destroyed, as her erasure event is
        here (:func:`~pjai.app.privacy.destroy_replaced_keys`)."""
        destroy_replaced_keys(self._ring, partial(event_log, self._manager), self._manager.query)
        if pending_erasures(self._manager):
            return
        keys = self._erased_keys()
        still = set()
        if self._erased:
            rows = self._manager.query(select(personas.c.id).where(personas.c.id.in_(self._erased)))
            still = {row.id for row in rows}
        live, erasures = self._personas(), self._erasure_events()
        if (
            keys == self._compacted
            and still == self._erased
            and self._live <= live
            and erasures <= self._erasures
        ):
            self._live = live  # personas made since: nothing to compact
            return
        # Before the compaction: one marked during it may have rows it did not cover.
        owed = rewrites_due(self._data_dir, self._manager)
        store = self._manager.store
        assert store is not None
        before = store.head, store.confirmed_head  # as of the check above
        emptied = store.compact()
        done = self._manager.shards.compact()
        # Another process reading an older state holds the old pages, or committed (an
        # erasure, whose pending event keeps the rows it deleted) or was confirmed
        # meanwhile: not done, the next exchange tries again.
        waiting = pending_erasures(self._manager)  # reads the file anew: head too
        settled = not waiting and (store.head, store.confirmed_head) == before
        if emptied and len(done) == len(self._manager.shards) and settled:
            self._compacted, self._erased, self._live = keys, still, live
            self._erasures = erasures
            try:
                finish_rewrites(self._data_dir, self._manager, owed)
            except (PjaiError, OSError, apsw.Error) as exc:  # the marks stay for the next open
                log.warning("finishing the erasures of %s: %s", ", ".join(owed), exc)


class Tending:
    """What a syncing directory does now and then (:func:`tend`): its
    keys exchanged (an encrypted one, :class:`KeysIn`), then what erased personas left
    beside the store dropped (:class:`~pjai.app.privacy.ForgetGone`)."""

    def __init__(self, keys_in: KeysIn | None, gone: ForgetGone) -> None:
        self.keys_in, self._gone = keys_in, gone

    def __call__(self) -> None:
        if self.keys_in is not None:
            self.keys_in()
        self.drop_gone()

    def due(self) -> bool:
        """Whether an erasure calls for tending before the next regular turn
        (:meth:`KeysIn.due`)."""
        return self.keys_in is not None and self.keys_in.due()

    def drop_gone(self) -> None:
        """Drop what erased personas left beside the store, without exchanging keys."""
        try:
            self._gone()
        except (PjaiError, OSError, apsw.Error) as exc:  # the next turn tries again
            log.warning("dropping what erased personas left beside the store: %s", exc)


def _unmake(data_dir: DataDir, before: list[str], stored: bool | None) -> None:
    """Leave a directory that a first connect failed to make as it was before; unless an
    import or a backup has taken it since, whose files would be taken with them."""
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(data_dir.writing())
        except ConfigError as exc:
            log.warning("%s is left as the first connect made it: %s", data_dir.path, exc)
            return
        flags = data_dir.flags()
        if stored is None:
            flags.unset("sync")
        else:
            flags.set("sync", stored)
        data_dir.remove_new(before)


def write_status(
    data_dir: DataDir, status: SyncStatus, url: str, store_id: str, peers: list[Peer]
) -> None:
    """Record the status of this process's sync client in the data directory's status
    file (read by :func:`sync_status`), replacing it whole. A file that cannot be
    written (a full disk) is said in the log; the sync goes on."""
    body = {
        **asdict(status),
        "lag": status.lag,
        "url": url,
        "store_id": store_id,
        "pid": os.getpid(),
        "updated_at": datetime.now(UTC).isoformat(),
        "peers": [
            {
                "name": p.name,
                "state": p.state,
                "client_id": p.client_id,
                "last_seen": p.last_seen.astimezone(UTC).isoformat(),
                "detail": p.detail,
            }
            for p in peers
        ],
    }
    path = data_dir.sync_status_path
    try:
        replace_text(path, json.dumps(body))
    except OSError as exc:
        log.warning("cannot write the sync status to %s: %s", path, exc)


KEYS_EVERY_S = 10.0
"""How often a running client of an encrypted directory exchanges keys with the server."""

KEYS_SOON_S = 1.0
"""How often a running client of an encrypted directory looks (in its files, not at the
server) whether an erasure calls for a key exchange before the next regular one."""

_FOLLOW_UPS_S = (2.0, 4.0)
"""After an exchange an erasure called for, further ones this many seconds later: the
other device's side of it (its key's deletion) may reach the server a little later."""

_STOP_POLL_S = 0.1


async def tend(tending: Tending) -> None:
    """Tend a syncing directory (:class:`Tending`, in a thread) until cancelled: every
    :data:`KEYS_EVERY_S`, and soon after an erasure (:meth:`Tending.due`, looked at every
    :data:`KEYS_SOON_S`), then a few times more, backing off. A failed turn is said in
    the log and the next one tries again."""
    loop = asyncio.get_running_loop()
    regular = loop.time() + KEYS_EVERY_S
    follow_ups: list[float] = []
    while True:
        next_at = min([regular, *follow_ups])
        await asyncio.sleep(max(0.0, min(next_at - loop.time(), KEYS_SOON_S)))
        now = loop.time()
        if now >= next_at:
            follow_ups = [at for at in follow_ups if at > now]
        elif await _looked(tending.due, "looking for erasures", quiet=True):
            follow_ups = [now + after for after in _FOLLOW_UPS_S]
        else:
            continue
        await _looked(tending, "exchanging keys with the sync server")
        regular = loop.time() + KEYS_EVERY_S


async def _looked(call: Callable[[], object], doing: str, *, quiet: bool = False) -> object:
    """``call()`` in a thread; a failure is said in the log (``doing``; at debug level
    when ``quiet``: the regular turn reads the same files and says it) and gives None."""
    try:
        return await asyncio.to_thread(call)
    except PjaiError as exc:  # the next turn tries again; the sync goes on
        log.log(logging.DEBUG if quiet else logging.WARNING, "%s: %s", doing, exc)
    except Exception:  # a bug: said, and the sync goes on
        log.log(logging.DEBUG if quiet else logging.ERROR, "%s failed", doing, exc_info=True)
    return None


async def _run(
    client: SyncClient,
    report: Callable[[SyncStatus], None],
    *,
    once: bool,
    limit: float | None,
    tick: Tending | None = None,
    stop: threading.Event | None = None,
) -> bool:
    """Run ``client``, reporting each status; with ``once``, until level. Whether it got
    there. ``tick`` is tended meanwhile (:func:`tend`)."""
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stopped.set)
    client.start()
    last: SyncStatus | None = None
    level = False

    async def follow() -> None:
        nonlocal last, level
        while True:
            status = client.status
            if status != last:
                report(status)
                last = status
            if status.state == "failed":
                return
            if once and status.level:
                level = True
                return
            await client.wait_until(partial(operator.ne, status))

    async def stopped_by_caller(event: threading.Event) -> None:
        # Signal handlers run on the main thread only: a caller running this in another
        # thread stops it with a threading.Event, which cannot wake the loop, so it is
        # looked at ten times a second.
        while not event.is_set():  # noqa: ASYNC110
            await asyncio.sleep(_STOP_POLL_S)
        stopped.set()

    watching = asyncio.create_task(follow())
    stopping = asyncio.create_task(stopped.wait())
    others = [] if tick is None else [asyncio.create_task(tend(tick))]
    if stop is not None:
        others.append(asyncio.create_task(stopped_by_caller(stop)))
    try:
        await asyncio.wait({watching, stopping}, timeout=limit, return_when="FIRST_COMPLETED")
    finally:
        for task in (watching, stopping, *others):
            task.cancel()
        await asyncio.gather(watching, stopping, *others, return_exceptions=True)
        await client.stop()
        report(client.status)
    return level


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _no_store(data_dir: DataDir, hint: str) -> ConfigError:
    return ConfigError(f"{data_dir.path} has no store yet{hint}")


def sync_status(data_dir: DataDir) -> SyncReport:
    """Heads, pending events, lag and the last error of the directory's sync."""
    if not data_dir.store_path.exists():
        raise _no_store(data_dir, "; `pjai sync connect URL` makes one")
    with data_dir.open_store(sync=True) as store:
        confirmed = store.confirmed_head.global_seq
        pending, rejected = store.pending_count, len(store.rejected())
        quarantined = store.count_quarantined()
    seen = _seen(data_dir.sync_status_path)
    running = _alive(seen.pid) and seen.state not in ("stopped", "failed")
    server_head = seen.server_head
    lag = None if server_head is None else max(0, server_head - confirmed)
    state = (seen.state or "never connected") if running else "not running"
    return SyncReport(
        in_step=state == "online" and pending == 0 and lag == 0,
        state=state,
        last_state=seen.state,
        url=seen.url,
        store_id=seen.store_id,
        server_head=server_head,
        confirmed_head=confirmed,
        pending=pending,
        rejected=rejected,
        quarantined=quarantined,
        lag=lag,
        last_error=seen.last_error,
        reconnects=seen.reconnects,
        read_only=seen.read_only,
        updated_at=seen.updated_at,
        peers=[PeerView(**msgspec.structs.asdict(p)) for p in seen.peers] if running else [],
        pid=seen.pid if running else None,
    )


class _SeenPeer(msgspec.Struct, frozen=True):
    name: str
    state: str
    client_id: str
    last_seen: str
    detail: dict[str, str]


class _Seen(msgspec.Struct, frozen=True):
    """What :func:`write_status` records (the fields :func:`sync_status` reads)."""

    state: str | None = None
    pid: int | None = None
    server_head: int | None = None
    url: str | None = None
    store_id: str | None = None
    last_error: str | None = None
    reconnects: int = 0
    read_only: bool = False
    updated_at: str | None = None
    peers: list[_SeenPeer] = msgspec.field(default_factory=list)


def _seen(path: Path) -> _Seen:
    """The sync status file ``path`` (an empty status when there is none)."""
    try:
        return msgspec.json.decode(path.read_bytes(), type=_Seen)
    except FileNotFoundError:
        return _Seen()
    except OSError as exc:
        raise _not_status(path, f"cannot be read ({exc.strerror or exc})") from exc
    except msgspec.ValidationError as exc:
        raise _not_status(path, f"is not a sync status ({exc})") from exc
    except (ValueError, RecursionError) as exc:  # msgspec.DecodeError is a ValueError
        raise _not_status(path, f"is not JSON: {exc}") from exc


def _not_status(path: Path, problem: str) -> ConfigError:
    return ConfigError(
        f"{path} {problem}; the next `pjai sync connect` here writes it anew, or delete it"
    )


def sync_conflicts(data_dir: DataDir) -> list[RejectedEvent]:
    """Local events the sync rejected, with the reasons."""
    if not data_dir.store_path.exists():
        raise _no_store(data_dir, "")
    with data_dir.open_store(sync=True) as store:
        rejected = store.rejected()
    return [RejectedEvent(e.record.id, e.record.name, e.record.at, e.error) for e in rejected]
