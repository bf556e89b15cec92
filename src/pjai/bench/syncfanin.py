"""The fan-in of ``pjai bench sync``: many clients, each on a store of its own, pushing
at once, through the raw protocol or through SyncClients."""

from __future__ import annotations

import asyncio
import time

from pjai.bench.sharedfanin import connected
from pjai.bench.syncclient import memory, started_client
from pjai.bench.syncworkload import STEP_TIMEOUT_S, SyncWorkload
from pjai.schema import SCHEMA, EventRecord, PersonaCreated, new_id
from pjai.schema.records import ROOT, stamp
from pjai.schema.types import utc_now
from pjai.store import Store
from pjai.sync.client import SyncClient
from pjai.sync.protocol import (
    Events,
    Ping,
    Pong,
    Push,
    PushAck,
    decode,
    encode,
)
from pjai.sync.transport import Transport

__all__: list[str] = []


async def fanin_sync_clients(
    urls: list[str], tokens: list[tuple[str, str]], workload: SyncWorkload
) -> int:
    """Events a second through SyncClients, until each one's last event is confirmed.

    Client ``i`` syncs its own store ``tokens[i]`` through server ``i % len(urls)``; all
    the events are committed before the clock starts, then pushed in batches.
    """
    stores = [Store.memory(sync=True) for _ in tokens]
    clients: list[SyncClient] = []
    try:
        for store in stores:
            store.commit(PersonaCreated(persona_id="p1", name="P1"))
        for i, (store, (store_id, token)) in enumerate(zip(stores, tokens, strict=True)):
            clients.append(
                started_client(store, urls[i % len(urls)], token, store_id, workload.batch)
            )
        async with asyncio.timeout(STEP_TIMEOUT_S):
            await asyncio.gather(*(c.wait_until(lambda s: s.level) for c in clients))
        # One stretch without awaiting: no push leaves before every event is committed.
        last: list[str] = []
        for store in stores:
            for b in range(workload.client_batches):
                first = b * workload.batch
                records = store.commit(*[memory(first + i) for i in range(workload.batch)])
            last.append(records[-1].id)
        started = time.perf_counter()
        async with asyncio.timeout(STEP_TIMEOUT_S):
            waits = [c.synced(e) for c, e in zip(clients, last, strict=True)]
            outcomes = await asyncio.gather(*waits)
        elapsed = time.perf_counter() - started
        if set(outcomes) != {"confirmed"}:
            raise RuntimeError(f"fan-in events ended {sorted(set(outcomes))}, not all confirmed")
    finally:
        for client in clients:
            await client.stop()
        for store in stores:
            store.close()
    return round(len(tokens) * workload.client_batches * workload.batch / elapsed)


def _history(count: int) -> list[EventRecord]:
    """A new store's first ``count`` events, as its client would push them."""
    client_id = new_id()
    events = (memory(i) if i else PersonaCreated(persona_id="p1", name="P1") for i in range(count))
    return stamp(
        ((name, args) for name, _, args in map(SCHEMA.encode, events)),
        after=ROOT,
        generation=0,
        client_id=client_id,
        session_id=client_id,
        at=utc_now(),
    )


async def idle_connection(url: str, token: str, store_id: str, client_id: str = "") -> Transport:
    """A connection as an idle, level client leaves it: hello, welcome, live pull, quiet."""
    transport, _ = await connected(url, token, store_id, client_id)
    return transport


async def _push_all(transport: Transport, history: list[EventRecord], batch: int) -> None:
    """Push ``history`` one batch at a time (the next on each ack) until all is echoed."""
    pushes = [history[i : i + batch] for i in range(0, len(history), batch)]
    last, echoed, acked = history[-1].position.global_seq, 0, 0
    await transport.send(encode(Push(id=1, events=pushes[0])))
    while acked < len(pushes) or echoed < last:
        message = decode(await transport.receive())
        if isinstance(message, PushAck):
            acked += 1
            if acked < len(pushes):
                await transport.send(encode(Push(id=acked + 1, events=pushes[acked])))
        elif isinstance(message, Events):
            echoed = max([echoed, *(e.position.global_seq for e in message.events)])
        elif not isinstance(message, Ping | Pong):
            raise RuntimeError(f"a fan-in push was answered with {message!r}")


async def fanin_raw(urls: list[str], tokens: list[tuple[str, str]], workload: SyncWorkload) -> int:
    """Events a second from raw protocol clients, until each one's last event is echoed."""
    events = workload.batches * workload.batch
    histories = [_history(events) for _ in tokens]
    transports: list[Transport] = []
    try:
        async with asyncio.timeout(STEP_TIMEOUT_S):
            for start in range(0, len(tokens), 50):
                group = tokens[start : start + 50]
                transports += await asyncio.gather(
                    *(
                        idle_connection(
                            urls[(start + i) % len(urls)],
                            token,
                            store_id,
                            histories[start + i][0].client_id,  # it pushes its own events
                        )
                        for i, (store_id, token) in enumerate(group)
                    )
                )
            started = time.perf_counter()
            await asyncio.gather(
                *(
                    _push_all(t, h, workload.batch)
                    for t, h in zip(transports, histories, strict=True)
                )
            )
            elapsed = time.perf_counter() - started
    finally:
        await asyncio.gather(*(t.close() for t in transports), return_exceptions=True)
    return round(len(tokens) * events / elapsed)
