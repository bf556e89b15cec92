"""SyncClients as ``pjai bench sync`` runs them: the events they commit, starting one,
and the catch-up of an instance that comes back with a backlog while another writes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

from pjai.bench.workload import memory_event
from pjai.schema import MemoryAdded, PersonaCreated
from pjai.store import Store
from pjai.sync.client import SyncClient
from pjai.sync.websocket import websocket_connector

__all__ = ["CATCHUP_PENDING", "CATCHUP_WRITES_PER_S", "catchup_seconds", "memory", "started_client"]

CATCHUP_PENDING = 2_000
"""Events the returning instance committed while offline."""

CATCHUP_WRITES_PER_S = 50.0
"""How fast the other instance writes meanwhile, one event per commit."""

_LIMIT_S = 120.0


def memory(index: int) -> MemoryAdded:
    """The ``index``-th benchmark memory of persona ``p1``."""
    return memory_event(index, "p1")


def started_client(
    store: Store, url: str, token: str, store_id: str, batch: int = 1_000
) -> SyncClient:
    """A running SyncClient for ``store`` through the server at ``url``."""
    client = SyncClient(store, websocket_connector(url, token), store_id=store_id, batch=batch)
    client.start()
    return client


async def _write(store: Store, per_s: float, written: asyncio.Event) -> None:
    """Commit one memory every ``1 / per_s`` seconds, on a fixed schedule, until cancelled."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    index = 0
    while True:
        store.commit(memory(index))
        index += 1
        if index == 10:
            written.set()
        await asyncio.sleep(max(0.0, start + index / per_s - loop.time()))


async def catchup_seconds(
    url: str,
    token: str,
    store_id: str,
    workdir: Path,
    *,
    pending: int = CATCHUP_PENDING,
    per_s: float = CATCHUP_WRITES_PER_S,
) -> float:
    """Seconds until a returning instance has every one of ``pending`` events confirmed.

    Instance B (a store file) syncs once, goes offline and commits ``pending`` memories.
    Instance A (in memory) then writes ``per_s`` events a second through its own
    SyncClient; B's client starts once A is writing, and the clock runs from its start
    until B's last pending event is confirmed. A keeps writing throughout.
    """
    path = workdir / f"catchup-{store_id}.db"
    writer_store, back = Store.memory(sync=True), Store.open(path, sync=True)
    clients: list[SyncClient] = []
    writing: asyncio.Task[None] | None = None
    try:
        clients.append(started_client(writer_store, url, token, store_id))
        writer_store.commit(PersonaCreated(persona_id="p1", name="P1"))
        returning = started_client(back, url, token, store_id)
        async with asyncio.timeout(_LIMIT_S):
            await returning.wait_until(lambda s: s.level and s.confirmed_head >= 1)
        await returning.stop()
        records = back.commit(*[memory(i) for i in range(pending)])
        written = asyncio.Event()
        writing = asyncio.create_task(_write(writer_store, per_s, written))
        async with asyncio.timeout(_LIMIT_S):
            await written.wait()
        clients.append(returning)
        started_at = time.perf_counter()
        returning.start()
        try:
            async with asyncio.timeout(_LIMIT_S):
                outcome = await returning.synced(records[-1].id)
        except TimeoutError:
            raise RuntimeError(
                f"catch-up: {back.pending_count} of {pending} events still pending after "
                f"{_LIMIT_S:g} s of another instance writing {per_s:g} events/s"
            ) from None
        elapsed = time.perf_counter() - started_at
        if outcome != "confirmed" or back.pending_count or back.rejected():
            raise RuntimeError(f"catch-up ended with the last event {outcome}, not confirmed")
        return round(elapsed, 2)
    finally:
        if writing is not None:
            writing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writing
        for client in clients:
            await client.stop()
        writer_store.close()
        back.close()
        _remove(path)


def _remove(path: Path) -> None:
    """Delete a store file and its WAL files."""
    for leftover in path.parent.glob(f"{path.name}*"):
        leftover.unlink()
