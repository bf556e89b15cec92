"""One sync connection of a hub: the tasks that read and write it around its session.

The reader hands each frame to the connection's
:class:`~pjai.sync.server.session.ServerSession` and sends its answers; the writer sends
the connection's pull what its store's :class:`~pjai.sync.server.hub.Feed` brings, the
pages of a catch-up under a slot of the token's (:class:`~pjai.sync.server.places.Bodies`).
A frame the client does not take within ``send_timeout`` closes the connection
(``slow_consumer``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from pjai.sync.presence import Roster
from pjai.sync.protocol import Error, Events, Message, Peer, Presence
from pjai.sync.server.session import ServerSession
from pjai.sync.transport import ConnectionClosed, Transport

if TYPE_CHECKING:
    from pjai.sync.server.hub import Feed, Hub

__all__ = ["Connection"]

# The hub's logger, as docs/sync-protocol.md names it for a connection's end.
log = logging.getLogger("pjai.sync.server.hub")


class Connection:
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
            # last one (up to MAX_FRAME_BYTES) while it waits for the next.
            del frame
            if self.greeting is not None and session.state != "greeting":
                self.hub.places.greeted(self.greeting)
                self.greeting = None
            for reply in replies:
                await self._send(reply)
            if session.state != "closed":
                self.hub.heard(self)  # after the welcome: presence never comes before it
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
            self.hub.spawn(self.hub.refresh(session.store_id))
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
