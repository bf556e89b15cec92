"""A sync client inside a process that serves something else (the web app): connected
and disconnected on that process's event loop, its status written to the data
directory's status file as ``pjai sync connect`` writes it, so that ``pjai sync
status`` and every page see the same."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
from collections.abc import Callable
from functools import partial

from pjai.app.datadir import DataDir
from pjai.app.forgetting import ForgetGone
from pjai.app.sync import SyncLock, sync_url
from pjai.app.syncstatus import write_status
from pjai.app.tending import KeysIn, Tending, tend
from pjai.errors import ConfigError, PjaiError
from pjai.hybrid import HybridDatabaseManager
from pjai.security import FieldCodec
from pjai.sync.client import STORE_KEY, SyncClient, SyncStatus
from pjai.sync.websocket import websocket_connector

__all__ = ["SETTLE_S", "SyncLink"]

log = logging.getLogger(__name__)

SETTLE_S = 10.0
"""How long :meth:`SyncLink.connect` waits for the first answer before it returns with
the client still trying (offline first: it goes on reconnecting)."""


class SyncLink:
    """At most one sync client for ``manager`` (over ``data_dir``), run on the event
    loop :meth:`connect` is awaited on. Use it from that loop only."""

    def __init__(self, data_dir: DataDir, manager: HybridDatabaseManager) -> None:
        self._data_dir = data_dir
        self._manager = manager
        self._client: SyncClient | None = None
        self._lock: SyncLock | None = None
        self._reporting: asyncio.Task[None] | None = None
        self._keys: asyncio.Task[None] | None = None
        self._keys_in: KeysIn | None = None
        self._connecting = False
        self.url: str | None = None
        """The server of the running client."""

    @property
    def client(self) -> SyncClient | None:
        """The running client, if connected."""
        return self._client

    async def connect(
        self,
        url: str,
        *,
        token: str = "",
        store_id: str | None = None,
        name: str | None = None,
        settle_s: float = SETTLE_S,
    ) -> SyncStatus:
        """Start syncing through the server at ``url``; returns the client's status once
        it is online, or after ``settle_s`` while it is still trying.

        Raises :class:`~pjai.errors.ConfigError`: already connected, a standalone data
        directory, another process's client on it, a bad URL, or a first answer that
        was a refusal (bad token, another store's history); nothing is left running.
        """
        if self._client is not None:
            raise ConfigError(f"already connected to {self.url}: disconnect first")
        if self._connecting:
            raise ConfigError("a connect is under way: wait for it")
        self._connecting = True  # before the first await: a second click waits its turn
        try:
            return await self._connect(url, token, store_id, name, settle_s)
        finally:
            self._connecting = False

    async def _connect(
        self, url: str, token: str, store_id: str | None, name: str | None, settle_s: float
    ) -> SyncStatus:
        if not self._manager.syncing:
            raise ConfigError(
                f"{self._data_dir.path} is a standalone data directory: only a synced one "
                "(made by `pjai sync connect URL` on a new directory, or by `pjai import "
                "FILE --data-dir NEW --sync` from an export of this one) connects"
            )
        ws_url = sync_url(url)
        self._lock = await asyncio.to_thread(SyncLock, self._data_dir)
        try:
            return await self._start(ws_url, url, token, store_id, name, settle_s)
        except BaseException:
            await self.disconnect()
            raise

    async def _start(
        self,
        ws_url: str,
        url: str,
        token: str,
        store_id: str | None,
        name: str | None,
        settle_s: float,
    ) -> SyncStatus:
        store = self._manager.store
        assert store is not None
        chosen = store_id or store.meta(STORE_KEY) or "default"
        codec = self._manager.schema.codec
        keys_in = None
        if isinstance(codec, FieldCodec):  # the other devices need the keys first
            keys_in = KeysIn(self._data_dir, self._manager, codec.keys, url, token, chosen)
            try:
                await asyncio.to_thread(keys_in)
            except PjaiError as exc:  # offline first: the next exchange tries again
                log.warning("exchanging keys with the sync server: %s", exc)
        self._keys_in = keys_in
        tending = Tending(keys_in, ForgetGone(self._data_dir, self._manager))
        await asyncio.to_thread(tending.drop_gone)
        self._keys = asyncio.create_task(tend(tending))
        client = self._manager.sync_client(
            websocket_connector(ws_url, token),
            store_id=chosen,
            presence_name=name,
            before_push=None if keys_in is None else keys_in.cleared,
        )

        def write() -> None:
            write_status(self._data_dir, client.status, ws_url, chosen, client.presence.peers)

        client.presence.on_peers(lambda _: write())
        client.start()
        self._client, self.url = client, ws_url
        self._reporting = asyncio.create_task(_report(client, write))
        with contextlib.suppress(TimeoutError):
            answered = client.wait_until(lambda s: s.state in ("online", "failed"))
            await asyncio.wait_for(answered, settle_s)
        status = client.status
        if status.state == "failed":
            await self.disconnect()
            raise ConfigError(f"the sync server at {ws_url} refused: {status.last_error}")
        return status

    async def disconnect(self) -> None:
        """Stop the client (pending events stay in the store); nothing if none runs."""
        client, reporting, keys = self._client, self._reporting, self._keys
        self._client = self._reporting = self._keys = self.url = None
        lock, self._lock = self._lock, None
        keys_in, self._keys_in = self._keys_in, None
        try:
            await self._stop(client, reporting, keys)
            if keys_in is not None:  # an exchange under way in a thread ends first
                await asyncio.to_thread(keys_in.wait)
        finally:
            if lock is not None:
                lock.close()

    async def _stop(
        self,
        client: SyncClient | None,
        reporting: asyncio.Task[None] | None,
        keys: asyncio.Task[None] | None,
    ) -> None:
        if keys is not None:
            keys.cancel()
            await asyncio.gather(keys, return_exceptions=True)
        if client is None:
            return
        await client.stop()
        if reporting is not None:
            reporting.cancel()
            await asyncio.gather(reporting, return_exceptions=True)


async def _report(client: SyncClient, write: Callable[[], None]) -> None:
    """Write the status file (a small file, written whole) on every change of the
    client's status, the last one too."""
    last: SyncStatus | None = None
    try:
        while True:
            status = client.status
            if status != last:
                write()
                last = status
            await client.wait_until(partial(operator.ne, status))
    finally:
        if client.status != last:
            write()
