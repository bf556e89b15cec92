"""The shared fan-in of ``pjai bench sync``: many clients writing to one store at once.

Every client holds a live pull on the same store and pushes its own events, each batch
stamped after the head it last heard of. A push that lost the race for the head is
refused (``server_ahead``, with the head it lost to): the client stamps the batch again
after that head and pushes again, as a client rebases. Each event reaches every client
through its live pull; the clock stops when every client has heard the last one.
Meanwhile a pair of SyncClients on a store of their own may time commit-to-live-query
latency (:func:`pjai.bench.sync.commit_to_live`) on the loaded server.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from pjai.bench.syncclient import memory
from pjai.schema import SCHEMA, PersonaCreated, new_id
from pjai.schema.records import ROOT, EventRecord, Position, stamp
from pjai.schema.types import utc_now
from pjai.sync.protocol import (
    VERSIONS,
    Events,
    Hello,
    Ping,
    Pong,
    Pull,
    Push,
    PushAck,
    PushRejected,
    Welcome,
    decode,
    encode,
)
from pjai.sync.transport import Transport
from pjai.sync.websocket import websocket_connector

__all__ = ["SharedFanin", "connected", "shared_fanin"]


async def connected(
    url: str, token: str, store_id: str, client_id: str = ""
) -> tuple[Transport, Position]:
    """A connection as a level client leaves it (hello, welcome, live pull) and the head
    its pull reached."""
    transport = await websocket_connector(url)()
    client_id = client_id or new_id()
    hello = Hello(versions=list(VERSIONS), store_id=store_id, client_id=client_id, token=token)
    await transport.send(encode(hello))
    welcome = decode(await transport.receive())
    if not isinstance(welcome, Welcome):
        raise RuntimeError(f"the server answered hello with {welcome!r}")
    await transport.send(encode(Pull(cursor=welcome.head, live=True)))
    if not isinstance(answer := decode(await transport.receive()), Events):
        raise RuntimeError(f"the server answered a pull with {answer!r}")
    return transport, answer.head


@dataclass(slots=True)
class SharedFanin:
    """What one shared fan-in did."""

    events: int
    """Events appended to the shared store (every client's)."""
    seconds: float
    """From the first push until every client heard the last event."""
    pushes: int
    """Pushes appended."""
    refused: int
    """Pushes refused because another client's push took the head first."""

    @property
    def per_s(self) -> int:
        return round(self.events / self.seconds)


@dataclass(slots=True)
class _Writer:
    """One client of the shared store: its events, what it heard, how it fared."""

    transport: Transport
    client_id: str
    head: Position
    payloads: list[tuple[str, bytes]]
    pushes: int = 0
    refused: int = 0

    def batch(self, sent: int, size: int) -> list[EventRecord]:
        """The next ``size`` of its events, stamped after the head it knows."""
        return stamp(
            self.payloads[sent : sent + size],
            after=self.head,
            generation=self.refused,
            client_id=self.client_id,
            session_id=self.client_id,
            at=utc_now(),
        )

    async def run(self, size: int, last: int) -> None:
        """Push every event, again after each refusal, until it heard event ``last``."""
        sent, waiting = 0, False
        while sent < len(self.payloads) or self.head.global_seq < last:
            if not waiting and sent < len(self.payloads):
                await self.transport.send(encode(Push(id=sent, events=self.batch(sent, size))))
                waiting = True
            message = decode(await self.transport.receive())
            if isinstance(message, Events):
                if message.events and message.events[-1].position.key > self.head.key:
                    self.head = message.events[-1].position
            elif isinstance(message, PushAck):
                sent, waiting = sent + message.accepted, False
                self.pushes += 1
            elif isinstance(message, PushRejected) and message.reason == "server_ahead":
                waiting = False
                self.refused += 1
                if message.head is not None and message.head.key > self.head.key:
                    self.head = message.head
            elif isinstance(message, PushRejected) and message.reason == "rate_limited":
                waiting = False
                await asyncio.sleep(message.retry_after or 0.01)
            elif not isinstance(message, Ping | Pong):
                raise RuntimeError(f"a shared fan-in push was answered with {message!r}")


def _payloads(count: int) -> list[tuple[str, bytes]]:
    return [(name, args) for name, _, args in map(SCHEMA.encode, map(memory, range(count)))]


async def shared_fanin(
    urls: list[str], tokens: list[str], store_id: str, *, events: int, batch: int
) -> SharedFanin:
    """A connection to one store per token (spread over ``urls``, each client with a
    token of its own, as devices have), each pushing ``events`` memories ``batch`` at a
    time; timed until every client has them all."""
    clients = len(tokens)
    # The persona first, so that every memory applies wherever the store is replayed.
    owner_id = new_id()
    first, head = await connected(urls[0], tokens[0], store_id, owner_id)
    try:
        if head == ROOT:
            name, _, args = SCHEMA.encode(PersonaCreated(persona_id="p1", name="P1"))
            owner = stamp(
                [(name, args)],
                after=ROOT,
                generation=0,
                client_id=owner_id,
                session_id=owner_id,
                at=utc_now(),
            )
            await first.send(encode(Push(id=0, events=owner)))
            while not isinstance(answer := decode(await first.receive()), PushAck):
                if not isinstance(answer, Events | Ping | Pong):
                    raise RuntimeError(f"the shared store's persona was answered {answer!r}")
    finally:
        await first.close()
    payloads = _payloads(events)  # the same memories for every client, stamped by each
    writers: list[_Writer] = []
    try:
        for start in range(0, clients, 50):
            group = range(start, min(clients, start + 50))
            ids = [new_id() for _ in group]
            opened = await asyncio.gather(
                *(
                    connected(urls[i % len(urls)], tokens[i], store_id, ids[i - start])
                    for i in group
                )
            )
            writers += [_Writer(t, i, h, payloads) for i, (t, h) in zip(ids, opened, strict=True)]
        last = max(w.head.global_seq for w in writers) + clients * events
        started = time.perf_counter()
        await asyncio.gather(*(w.run(batch, last) for w in writers))
        elapsed = time.perf_counter() - started
    finally:
        await asyncio.gather(*(w.transport.close() for w in writers), return_exceptions=True)
    return SharedFanin(
        events=clients * events,
        seconds=elapsed,
        pushes=sum(w.pushes for w in writers),
        refused=sum(w.refused for w in writers),
    )
