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

from prometheus_client import CollectorRegistry, Counter, Gauge

from pjai.errors import PjaiError
from pjai.schema.records import ROOT, Position
from pjai.sync.presence import FAN_OUT_INTERVAL_S, PRESENCE, Roster
from pjai.sync.protocol import Error, Events, Message, Peer, Presence, encode
from pjai.sync.server.keys import KeyBox, MemoryKeys
from pjai.sync.server.log import ServerLog
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


class _Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.connections = Gauge(
            "pjai_sync_connections", "Open sync connections", registry=self.registry
        )
        self.appended = Counter(
            "pjai_sync_events_appended", "Events appended to the log", registry=self.registry
        )
        self.pushes = Counter(
            "pjai_sync_pushes", "Pushes answered", ["result"], registry=self.registry
        )
        self.sent = Counter(
            "pjai_sync_events_sent", "Events sent to pullers", registry=self.registry
        )
        self.refreshes = Counter(
            "pjai_sync_refreshes", "Reads of other processes' appends", registry=self.registry
        )
        self.closed = Counter(
            "pjai_sync_connections_closed", "Connections closed", ["reason"], registry=self.registry
        )
        self.held = Counter(
            "pjai_sync_frames_held",
            "Frames after which a connection was not read for a while: its token was over "
            "its request or byte rate",
            registry=self.registry,
        )


FRAMES_BYTES = 32 * 1024 * 1024
"""Bytes of encoded ``events`` frames a hub keeps for its live pullers, at most."""


class _Frames:
    """Encoded frames of the latest event batches: the live pullers of a store are sent
    the same batch after each append, which is encoded once for all of them. Frames are
    kept per store: event ids are unique within a store only (an archive imported into
    two stores keeps its ids). At most ``size`` frames and ``budget`` bytes are kept, the
    oldest going first: frames of up to ``MAX_FRAME_BYTES`` each would otherwise hold
    ``size`` times that."""

    def __init__(self, size: int = 64, budget: int = FRAMES_BYTES) -> None:
        self._size = size
        self._budget = budget
        self._frames: dict[tuple[object, ...], bytes] = {}
        self.kept = 0
        """Bytes of the frames kept."""

    def encode(self, message: Message | Events, store_id: str) -> bytes:
        if not isinstance(message, Events) or not message.events:
            return encode(message)
        first, last = message.events[0], message.events[-1]
        key = (store_id, first.id, last.id, len(message.events), message.head.key, message.more)
        frame = self._frames.get(key)
        if frame is None:
            frame = encode(message)
            if len(frame) > self._budget:
                return frame
            # The encoder leaves room after what it wrote, half as much again: a frame
            # kept is a copy of its own size, or the budget would hold half as much more.
            frame = self._frames[key] = bytes(memoryview(frame))
            self.kept += len(frame)
            while len(self._frames) > self._size or self.kept > self._budget:
                oldest = next(iter(self._frames))
                self.kept -= len(self._frames.pop(oldest))
        return frame


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
        self.metrics = _Metrics()
        self.frames = _Frames()
        self.feeds: dict[str, Feed] = {}
        self.rosters: dict[str, Roster[_Connection]] = {}
        self._fanning: set[Roster[_Connection]] = set()
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
            self._spawn(self._refresh(store_id))

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
        connection = _Connection(self, session, transport, address)
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
            self._spawn(self.serve(server_end, address=address))
            return client_end

        return connect

    # -- feeds -------------------------------------------------------------------

    def feed(self, store_id: str) -> Feed:
        """The store's feed in this process."""
        found = self.feeds.get(store_id)
        if found is None:
            found = self.feeds[store_id] = Feed()
        return found

    async def _refresh(self, store_id: str) -> None:
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
                    self._spawn(self._refresh(store_id))

    # -- presence ------------------------------------------------------------------

    def _heard(self, connection: _Connection) -> None:
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

    def _left(self, connection: _Connection) -> None:
        session = connection.session
        roster = self.rosters.get(session.store_id)
        if roster is None or not roster.leave(session.session_id):
            return
        if roster.listeners:
            self._fan_out(roster)
        else:
            del self.rosters[session.store_id]

    def _fan_out(self, roster: Roster[_Connection]) -> None:
        if roster.owed and roster not in self._fanning:
            self._fanning.add(roster)
            self._spawn(self._send_presence(roster))

    async def _send_presence(self, roster: Roster[_Connection]) -> None:
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

    def _spawn(self, work: object) -> None:
        assert asyncio.iscoroutine(work)
        task: asyncio.Task[None] = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class _Connection:
    """The reader and writer tasks of one connection around its session."""

    def __init__(
        self, hub: Hub, session: ServerSession, transport: Transport, address: str
    ) -> None:
        self.hub = hub
        self.session = session
        self.transport = transport
        self.greeting: str | None = address
        """The address whose place the connection holds until it said hello."""
        self.feed: Feed | None = None
        self._lock = asyncio.Lock()  # one session call at a time
        self._send_lock = asyncio.Lock()  # one frame on the wire at a time
        self._pulling = asyncio.Event()
        self._pulled = asyncio.Event()  # a new pull: answer it even if the feed is still
        self._refused = asyncio.Event()  # the token was refused while sending presence

    async def run(self) -> None:
        """Read and write until either side closes; a server failure ends it with an error."""
        tasks = {
            asyncio.create_task(self._read()),
            asyncio.create_task(self._write()),
            asyncio.create_task(self._ended()),
        }
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        except ConnectionClosed as exc:
            # Clients go away, politely or not, at any moment: normal, not worth a warning.
            log.debug("a connection to store %r ended: %s", self.session.store_id, exc)
        except Exception as exc:  # the log failed: tell the client, which retries later
            log.exception("a sync connection to store %r failed", self.session.store_id)
            self.hub.metrics.closed.labels("server_error").inc()
            self.session.state = "closed"
            with contextlib.suppress(ConnectionClosed):
                # The details stay in the server's log; clients may be other people.
                failed = f"the server failed ({type(exc).__name__}); retry later"
                await self._send(Error(code="server_error", message=failed))
            await self.transport.close(1011, "server_error")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.transport.close()

    async def _read(self) -> None:
        session = self.session
        # A connection that does not say hello does not hold a place for long: the time
        # runs from the connection's start, whatever else it sends meanwhile.
        hello_by = asyncio.get_running_loop().time() + self.hub.hello_timeout
        while True:
            try:
                async with asyncio.timeout_at(hello_by if session.state == "greeting" else None):
                    frame = await self.transport.receive()
            except ConnectionClosed:
                self.hub.metrics.closed.labels("client").inc()
                raise
            except TimeoutError:
                self.hub.metrics.closed.labels("no_hello").inc()
                await self.transport.close(1008, "no_hello: a hello must come first, and soon")
                return
            async with self._lock:
                replies = await asyncio.to_thread(session.receive, frame)
                self._after(session)
            # Nothing of a handled frame is needed: an idle connection must not keep its
            # last one (up to the WebSocket layer's 16 MiB) while it waits for the next.
            del frame
            if self.greeting is not None and session.state != "greeting":
                self.hub.places.greeted(self.greeting)
                self.greeting = None
            for reply in replies:
                await self._send(reply)
            if session.state != "closed":
                self.hub._heard(self)  # after the welcome: presence never comes before it
            if session.state == "closed":
                reason = replies[-1].code if replies and isinstance(replies[-1], Error) else "bye"
                self.hub.metrics.closed.labels(reason).inc()
                return
            if session.cursor is not None:
                self._pulling.set()
                self._pulled.set()
            if session.hold:  # the token is over its rate: its next frame waits its turn
                held, session.hold = session.hold, 0.0
                self.hub.metrics.held.inc()
                await asyncio.sleep(held)

    def _after(self, session: ServerSession) -> None:
        if session.store_id and self.feed is None:
            self.feed = self.hub.feed(session.store_id)
            self.feed.watchers += 1
            # A wake-up that came while the hello read the head found no watcher: look again.
            self.hub._spawn(self.hub._refresh(session.store_id))
        if self.feed is not None:
            for appended in session.appended:
                self.hub.metrics.appended.inc(appended.count)
                self.feed.advance(appended.head)
            if session.head_seen is not None:
                self.feed.advance(session.head_seen)
        results = session.push_results
        for result in results:
            self.hub.metrics.pushes.labels(result).inc()
        session.appended.clear()
        results.clear()
        session.head_seen = None

    async def _write(self) -> None:
        session = self.session
        paging = False  # the last frame had more after it
        while True:
            await self._pulling.wait()
            feed = self.feed
            assert feed is not None
            moved = feed.moved  # taken before reading, so no move is missed
            self._pulled.clear()
            # A catch-up (a pull from behind the head, and every page after a frame with
            # more) reads and sends under a slot of the token's, as an HTTP body does:
            # pulls of a long history, however many, make a few pages at a time. A live
            # pull at the head is sent what was appended without one.
            cursor = session.cursor
            behind = cursor is not None and cursor.key < feed.head.key
            paging = paging or (session.unanswered and behind)
            key = session.token_id or session.store_id
            async with self.hub.bodies.slot(key) if paging else contextlib.nullcontext():
                async with self._lock:
                    batch = await asyncio.to_thread(session.next_events, feed.head)
                if isinstance(batch, Error):
                    await self._refuse(batch)
                    return
                if batch is not None:
                    await self._send(batch)
                    self.hub.metrics.sent.inc(len(batch.events))
                    paging = batch.more
                    continue
            paging = False
            if session.cursor is None:
                self._pulling.clear()
                continue
            waits = {asyncio.create_task(moved.wait()), asyncio.create_task(self._pulled.wait())}
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in waits:
                    task.cancel()

    async def send_presence(self, peers: list[Peer]) -> None:
        """Send the store's ``peers``, without this connection's own presence; or, if
        its token turns out revoked or expired, ``unauthorized`` and end the connection."""
        session = self.session
        if session.recheck_due:
            async with self._lock:
                refused = await asyncio.to_thread(session.recheck)
            if refused is not None:
                try:
                    await self._refuse(refused)
                finally:
                    self._refused.set()
                return
        if session.state == "ready":
            await self._send(Presence(peers=Roster.others(peers, session.session_id)))

    async def _refuse(self, error: Error) -> None:
        """Send the session's final ``error``; the connection ends after it."""
        self.hub.metrics.closed.labels(error.code).inc()
        await self._send(error)

    async def _ended(self) -> None:
        await self._refused.wait()

    async def _send(self, message: Message | Events) -> None:
        frame = self.hub.frames.encode(message, self.session.store_id)
        async with self._send_lock:
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel.
                async with asyncio.timeout(self.hub.send_timeout):
                    await self.transport.send(frame)
            except TimeoutError:
                self.hub.metrics.closed.labels("slow_consumer").inc()
                self.session.state = "closed"
                await self.transport.close(1008, "slow_consumer: the client does not read")
                raise ConnectionClosed("slow consumer disconnected") from None
