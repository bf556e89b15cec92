"""How frames travel: the transport port, and an in-memory transport for tests.

The :class:`~pjai.sync.client.SyncClient` and the server's
:class:`~pjai.sync.server.Hub` speak through a :class:`Transport`: WebSockets in
production (:mod:`pjai.sync.websocket`, :mod:`pjai.sync.server.websocket`),
:func:`memory_pipe` in tests, where a :class:`Faults` plan can drop, duplicate, reorder
or corrupt frames. A client opens its connections with a :data:`Connector`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from pjai.errors import PjaiError

__all__ = [
    "ConnectionClosed",
    "Connector",
    "Faults",
    "MemoryTransport",
    "Transport",
    "arrived",
    "memory_pipe",
]


class ConnectionClosed(PjaiError):
    """The other side closed the connection, or it broke. ``retry_after``: the seconds
    the other side asked to be left alone before the next connection, if it said so."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Transport(Protocol):
    """One end of a connection that carries whole frames."""

    async def send(self, frame: bytes) -> None:
        """Send a frame; raises :class:`ConnectionClosed` when the connection is gone."""
        ...

    async def receive(self) -> bytes:
        """The next frame; raises :class:`ConnectionClosed` when the connection is gone."""
        ...

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection (both directions)."""
        ...


Connector = Callable[[], Awaitable[Transport]]
"""Opens a new connection to a sync server (each call one connection); raises
:class:`ConnectionClosed` when it cannot."""


async def arrived(transport: Transport, frames: list[bytes], most: int) -> asyncio.Task[bytes]:
    """Add to ``frames`` the frames that already arrived, up to ``most`` in all; returns
    the receive of the next one, still running (or ended by the connection's failure).

    A frame that is there is taken within one turn of the event loop, whatever the
    transport, so a driver busy for a while (a rebase) handles what came meanwhile at
    once, and together.
    """
    while True:
        receiving = asyncio.create_task(transport.receive())
        if len(frames) >= most:
            return receiving
        try:
            await asyncio.sleep(0)
        except BaseException:  # cancelled: the receive must not outlive its caller
            receiving.cancel()
            raise
        if not receiving.done() or receiving.exception() is not None:
            return receiving
        frames.append(receiving.result())


@dataclass(slots=True)
class Faults:
    """What an in-memory transport does to the frames it sends (seeded, repeatable)."""

    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    corrupt: float = 0.0
    seed: int = 0
    _random: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def roll(self, chance: float) -> bool:
        return chance > 0 and self._random.random() < chance


_CLOSED = b""


class MemoryTransport:
    """One end of :func:`memory_pipe`."""

    def __init__(self, inbox: asyncio.Queue[bytes], outbox: asyncio.Queue[bytes]) -> None:
        self._inbox = inbox
        self._outbox = outbox
        self.closed = False
        self.close_reason = ""
        self.faults: Faults | None = None
        self._held: bytes | None = None
        self.peer: MemoryTransport | None = None

    async def send(self, frame: bytes) -> None:
        if self.closed:
            raise ConnectionClosed("the connection is closed")
        faults = self.faults
        if faults is None:
            self._outbox.put_nowait(frame)
            return
        if faults.roll(faults.drop):
            return
        if faults.roll(faults.corrupt):
            frame = frame[: len(frame) // 2] + b"\x00garbage"
        if self._held is None and faults.roll(faults.reorder):
            self._held = frame  # goes out after the next frame
            return
        self._outbox.put_nowait(frame)
        if faults.roll(faults.duplicate):
            self._outbox.put_nowait(frame)
        if self._held is not None:
            self._outbox.put_nowait(self._held)
            self._held = None

    async def receive(self) -> bytes:
        if self.closed:
            raise ConnectionClosed(self.close_reason or "the connection is closed")
        frame = await self._inbox.get()
        if frame is _CLOSED:
            self.closed = True
            raise ConnectionClosed(self.close_reason or "the other side closed the connection")
        return frame

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self._inbox.put_nowait(_CLOSED)
        self._outbox.put_nowait(_CLOSED)
        if self.peer is not None:
            self.peer.close_reason = reason


def memory_pipe() -> tuple[MemoryTransport, MemoryTransport]:
    """Two connected ends: what one sends, the other receives."""
    a_to_b: asyncio.Queue[bytes] = asyncio.Queue()
    b_to_a: asyncio.Queue[bytes] = asyncio.Queue()
    a, b = MemoryTransport(b_to_a, a_to_b), MemoryTransport(a_to_b, b_to_a)
    a.peer, b.peer = b, a
    return a, b
