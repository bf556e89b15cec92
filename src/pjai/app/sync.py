"""Syncing a data directory through a sync server.

:func:`connect` runs the sync client in the foreground, one per directory
(:class:`SyncLock`), tending the directory meanwhile (:mod:`pjai.app.tending`: key
exchanges), and writes its status to the data directory's status file after every
change; :func:`~pjai.app.syncstatus.sync_status` reads that file and the store, so it
works whether or not a client is running.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import operator
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import IO
from urllib.parse import urlsplit, urlunsplit

from pjai.app.datadir import DataDir
from pjai.app.forgetting import ForgetGone
from pjai.app.syncstatus import sync_status, write_status
from pjai.app.tending import KeysIn, Tending, tend
from pjai.errors import ConfigError, PjaiError
from pjai.resource import Resource
from pjai.security import FieldCodec
from pjai.store import Progress
from pjai.sync.client import STORE_KEY, SyncClient, SyncStatus
from pjai.sync.websocket import websocket_connector

__all__ = ["SyncLock", "SyncOutcome", "connect", "sync_url"]


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
            websocket_connector(ws_url, token),
            store_id=chosen,
            presence_name=name,
            before_push=None if keys_in is None else keys_in.cleared,
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


_STOP_POLL_S = 0.1


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
