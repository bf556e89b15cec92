"""A sync server process: connections, per-store feeds, wake-ups and metrics.

The hub drives one :class:`~pjai.sync.server.session.ServerSession` per connection over
any :class:`~pjai.sync.transport.Transport`. Each store has a :class:`Feed`: the head
as this process knows it. An append made here moves it at once; appends made by other
processes are found by a refresh, which a PostgreSQL notification asks for (a hint,
which can be lost) and a timer does anyway (the fallback), so a lost notification
delays an event but never loses it.

Memory per connection is bounded: a connection holds at most one batch, and nothing of
a frame it received once that is handled; a client that does not take a frame within
``send_timeout`` is disconnected with the reason ``slow_consumer`` rather than
buffered without limit. Its transport has
``close_timeout`` to close (:class:`~pjai.sync.server.websocket.ServerWebSocket`), since a
client that does not read takes no close frame either.

Presence (``presence/1``) is kept per store in this process, in a
:class:`~pjai.sync.presence.Roster`: connections that negotiated it hear who else is on
the store when one joins, announces, or leaves, at most once per ``presence_interval``
(less often for a large roster: :data:`~pjai.sync.presence.FAN_OUT_BYTES_PER_S`).

A connection's token is looked up again before frames go either way, at most every
:data:`~pjai.sync.server.session.RECHECK_S` per connection: one whose token was revoked
or expired is sent ``unauthorized`` instead of its next events or roster, and closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from pjai.errors import PjaiError
from pjai.schema.records import ROOT, Position
from pjai.sync.presence import FAN_OUT_INTERVAL_S, PRESENCE, Roster
from pjai.sync.server.connection import Connection
from pjai.sync.server.frames import FRAMES_BYTES, Frames
from pjai.sync.server.keys import KeyBox, MemoryKeys
from pjai.sync.server.log import ServerLog
from pjai.sync.server.metrics import Metrics
from pjai.sync.server.places import Bodies, Limits, Openings, Places, TooSoon
from pjai.sync.server.session import EXTENSIONS, Authenticate, ServerSession
from pjai.sync.server.tokens import RateLimiter
from pjai.sync.transport import ConnectionClosed, Connector, Faults, Transport, memory_pipe

__all__ = ["FRAMES_BYTES", "Feed", "Hub"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Feed:
    """One store's head in this process, and the connections waiting for it to move."""

    head: Position = ROOT
    watchers: int = 0
    moved: asyncio.Event = field(default_factory=asyncio.Event)
    refreshing: bool = False
    dirty: bool = False

    def advance(self, head: Position) -> None:
        """Move the head forward (never back) and wake the waiting connections."""
        if head.key > self.head.key:
            self.head = head
            self.moved.set()
            self.moved = asyncio.Event()


class Hub:
    """Serves sync connections for the stores of one :class:`ServerLog`."""

    def __init__(
        self,
        log: ServerLog,
        authenticate: Authenticate | None,
        *,
        limiter: RateLimiter | None = None,
        byte_limiter: RateLimiter | None = None,
        request_limiter: RateLimiter | None = None,
        openings: Openings | None = None,
        poll_interval: float = 1.0,
        send_timeout: float = 10.0,
        hello_timeout: float = 10.0,
        close_timeout: float = 10.0,
        presence: bool = True,
        presence_interval: float = FAN_OUT_INTERVAL_S,
        keys: KeyBox | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.log = log
        self.places = Places(limits)
        """The connections this process holds, under its limits (:mod:`.places`)."""
        self.bodies = Bodies()
        """Slots for the large bodies of HTTP answers (:class:`~.places.Bodies`)."""
        self.keys: KeyBox = keys if keys is not None else MemoryKeys()
        """The store's shared wrapped keys (:mod:`pjai.sync.server.keys`)."""
        self.authenticate = authenticate
        self.limiter = limiter
        self.byte_limiter = byte_limiter
        self.request_limiter = request_limiter
        """Frames other than pushes, and HTTP requests, per token (or store)."""
        self.openings = openings
        """How fast each remote address and token open connections (:class:`.Openings`)."""
        self.poll_interval = poll_interval
        self.send_timeout = send_timeout
        self.hello_timeout = hello_timeout
        self.close_timeout = close_timeout
        self.extensions = EXTENSIONS if presence else frozenset()
        self.presence_interval = presence_interval
        self.metrics = Metrics()
        self.frames = Frames()
        self.feeds: dict[str, Feed] = {}
        self.rosters: dict[str, Roster[Connection]] = {}
        self._fanning: set[Roster[Connection]] = set()
        self._poller: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._open: set[Transport] = set()
        self._stopped = False

    # -- lifecycle ---------------------------------------------------------------

    @property
    def connections(self) -> int:
        """The connections this process holds now (each took a place)."""
        return self.places.total

    async def start(self) -> None:
        """Start the refresh timer."""
        self._stopped = False
        if self._poller is None:
            self._poller = asyncio.create_task(self._poll())

    async def stop(self) -> None:
        """Close every connection; stop the timer and pending refreshes."""
        self._stopped = True
        # At once: a client that does not read holds its close for close_timeout.
        await asyncio.gather(
            *(transport.close(1012, "the server is restarting") for transport in list(self._open))
        )
        tasks = [t for t in (self._poller, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._poller = None

    def wake(self, store_id: str) -> None:
        """Ask for a refresh of one store (a notification from another process)."""
        if store_id in self.feeds:
            self.spawn(self.refresh(store_id))

    # -- one connection ------------------------------------------------------------

    def opening(self, address: str, secret: str = "") -> TooSoon | None:
        """Take an opening of a connection from ``address`` presenting the token
        ``secret`` (a server without tokens counts addresses only), before its handshake;
        ``None`` if both had one. A token given in the hello instead is counted there."""
        if self.openings is None:
            return None
        too_soon = self.openings.address(address)
        if too_soon is None and secret and self.authenticate is not None:
            too_soon = self.openings.token(secret)
        if too_soon is not None:
            self.metrics.closed.labels("rate_limited").inc()
        return too_soon

    async def serve(
        self, transport: Transport, *, header_token: str = "", address: str = ""
    ) -> None:
        """Run one connection from ``address`` until either side closes it; one that
        finds no place (:mod:`.places`) is closed at once."""
        if self._stopped:
            await transport.close(1012, "the server is stopping")
            return
        if (crowded := self.places.enter(address)) is not None:
            self.metrics.closed.labels("too_many_connections").inc()
            await transport.close(1013, f"too_many_connections: {crowded}")
            return
        session = ServerSession(
            self.log,
            self.authenticate,
            limiter=self.limiter,
            byte_limiter=self.byte_limiter,
            request_limiter=self.request_limiter,
            openings=self.openings,
            header_token=header_token,
            extensions=self.extensions,
            claim=self.places.claim,
        )
        connection = Connection(self, session, transport, address)
        self.metrics.connections.inc()
        self._open.add(transport)
        try:
            await connection.run()
        finally:
            self.places.leave(address=connection.greeting, token_id=session.token_place)
            self._left(connection)
            self._open.discard(transport)
            self.metrics.connections.dec()
            feed = connection.feed
            if feed is not None:
                feed.watchers -= 1
                if not feed.watchers and self.feeds.get(connection.session.store_id) is feed:
                    # Nobody here watches the store: forget it, and its cached events.
                    del self.feeds[connection.session.store_id]
                    self.log.forget(connection.session.store_id)

    def memory_connector(self, faults: Faults | None = None, address: str = "memory") -> Connector:
        """Connect clients to this hub in memory (tests), as from ``address``; ``faults``
        apply to both ends."""

        async def connect() -> Transport:
            if self._stopped:
                raise ConnectionClosed("the server is stopped")
            client_end, server_end = memory_pipe()
            client_end.faults = server_end.faults = faults
            self._open.add(server_end)  # closed by stop() even if serve never starts
            self.spawn(self.serve(server_end, address=address))
            return client_end

        return connect

    # -- feeds -------------------------------------------------------------------

    def feed(self, store_id: str) -> Feed:
        """The store's feed in this process."""
        found = self.feeds.get(store_id)
        if found is None:
            found = self.feeds[store_id] = Feed()
        return found

    async def refresh(self, store_id: str) -> None:
        """Read what other processes appended to the store, and move its feed; one
        refresh a store at a time, again if more was asked meanwhile."""
        feed = self.feed(store_id)
        if feed.refreshing:
            feed.dirty = True
            return
        feed.refreshing = True
        try:
            while True:
                feed.dirty = False
                head = await asyncio.to_thread(self.log.refresh, store_id)
                self.metrics.refreshes.inc()
                feed.advance(head)
                if not feed.dirty:
                    return
        except PjaiError:
            log.exception("refreshing store %s failed; the next poll retries", store_id)
        finally:
            feed.refreshing = False

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            for store_id, feed in list(self.feeds.items()):
                if feed.watchers:
                    self.spawn(self.refresh(store_id))

    # -- presence ------------------------------------------------------------------

    def heard(self, connection: Connection) -> None:
        """After a frame from a connection: note its presence, fan out what changed."""
        session = connection.session
        if not session.has(PRESENCE):
            return
        roster = self.rosters.get(session.store_id)
        if roster is None:
            roster = self.rosters[session.store_id] = Roster(self.presence_interval)
        roster.listen(session.session_id, connection)  # a newcomer hears who is there
        if session.presence_changed and session.presence is not None:
            session.presence_changed = False
            roster.announce(
                session.session_id, session.client_id, session.presence, session.seen_at
            )
        else:
            roster.seen(session.session_id, session.seen_at)
        self._fan_out(roster)

    def _left(self, connection: Connection) -> None:
        session = connection.session
        roster = self.rosters.get(session.store_id)
        if roster is None or not roster.leave(session.session_id):
            return
        if roster.listeners:
            self._fan_out(roster)
        else:
            del self.rosters[session.store_id]

    def _fan_out(self, roster: Roster[Connection]) -> None:
        if roster.owed and roster not in self._fanning:
            self._fanning.add(roster)
            self.spawn(self._send_presence(roster))

    async def _send_presence(self, roster: Roster[Connection]) -> None:
        """Send the roster to its listeners until no change is owed; changes made while
        it waits or sends go out in its next round."""
        loop = asyncio.get_running_loop()
        try:
            while (wait := roster.due(loop.time())) is not None:
                peers = roster.take(loop.time()) if wait == 0 else None
                if peers is None:
                    await asyncio.sleep(wait)
                    continue
                listeners = list(roster.listeners.values())
                results = await asyncio.gather(
                    *(c.send_presence(peers) for c in listeners), return_exceptions=True
                )
                for result in results:
                    if isinstance(result, Exception) and not isinstance(result, ConnectionClosed):
                        log.warning("sending presence failed: %r", result)
        finally:
            self._fanning.discard(roster)

    def spawn(self, work: object) -> None:
        """Run the coroutine ``work`` in a task of the hub's, which :meth:`stop` cancels."""
        assert asyncio.iscoroutine(work)
        task: asyncio.Task[None] = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
