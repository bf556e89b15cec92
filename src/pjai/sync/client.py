"""`SyncClient`: keeps a synced store in step with a sync server, offline first.

The client connects, pulls (live) from the store's confirmed head, rebases the store
onto what arrives (frames that arrived together in one rebase), and pushes pending
events as soon as the server can take them: right after the server's head as last
heard, numbered as the coming rebase will number them when the store can tell without
rebasing, so that a client with a backlog keeps up with others writing. Local commits
wake it. When the connection drops it waits (exponential backoff with jitter, 0.2 s
doubling to 30 s, starting over after a connection that stayed online that long; a
server that refused the connection as too soon is left alone as long as it asked first,
at most a minute) and connects again; pending events stay in the store file
meanwhile, across restarts too. Commits that other processes make to the store file
(a CLI command beside a running client) wake it too: it looks for them every
``watch_interval`` seconds, which costs one ``PRAGMA data_version``. It stops for good
only on errors that retrying cannot fix (a refused token, an unknown protocol version,
a server that lost this store's history, a cursor past the server's head, a push
refused without naming the event), and says why in :attr:`SyncClient.status` (a
:class:`~pjai.sync.status.SyncStatus`).

Given a ``before_push`` hook, the client asks it before each push how many of the
events about to go may go now; those it holds back, and all after them, wait, and it is
asked again :data:`PUSH_HELD_S` later. An encrypted directory's keys channel holds back
the events sealed with a data key the sync server does not hold yet
(:meth:`pjai.app.tending.KeysIn.cleared`), so that no one learns a key's id before the
key is shared.

Given a presence name (or an announcement, ``client.presence.announce``), the client
offers the ``presence/1`` extension: where the server accepts it, the client announces
itself and keeps who else is on the store in ``client.presence``
(:class:`~pjai.sync.peers.PeerBook`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import msgspec

from pjai.errors import ConfigError, PjaiError, RebaseError
from pjai.schema.records import EventRecord, EventStatus, Position, header_problem
from pjai.store import Store
from pjai.store.rebase import RebaseResult
from pjai.sync.clientside import Apply, ClientSession, Fail, Reject, Send, Wait, held_for
from pjai.sync.peers import PeerBook
from pjai.sync.presence import PRESENCE
from pjai.sync.protocol import (
    Events,
    Ping,
    Pong,
    Presence,
    PresenceRejected,
    PresenceUpdate,
    ProtocolError,
    Pull,
    Welcome,
    decode,
    encode,
)
from pjai.sync.status import SyncStatus
from pjai.sync.transport import ConnectionClosed, Connector, Transport, arrived

__all__ = ["PUSH_HELD_S", "BeforePush", "SyncClient", "SyncStatus"]

log = logging.getLogger(__name__)


BACKEND_KEY = "sync.backend_id"
STORE_KEY = "sync.store_id"
"""Store meta: the shared store this one syncs with (fixed by its first welcome)."""

FRAMES_AT_ONCE = 64
"""The most frames that arrived together taken at once (their events in one rebase)."""

BEHIND_EVENTS = 1_000
"""The most events left unapplied while a push is in flight (see ``SyncClient._step``)."""


PUSH_HELD_S = 1.0
"""After a ``before_push`` hook held back the next event, how long until it is asked
again."""

BeforePush = Callable[[Sequence[EventRecord]], Awaitable[int]]
"""How many of these events, about to be pushed in this order, may go now (a count from
the first); it must answer soon, and never block on the network."""


class _Final(PjaiError):
    """An error that reconnecting cannot fix."""


class SyncClient:
    """Syncs ``store`` (opened with ``sync=True``) through the server ``connect`` reaches."""

    def __init__(
        self,
        store: Store,
        connect: Connector,
        *,
        store_id: str,
        token: str = "",
        batch: int = 1_000,
        ping_interval: float = 15.0,
        answer_timeout: float = 30.0,
        backoff: tuple[float, float] = (0.2, 30.0),
        watch_interval: float = 0.025,
        seed: int | None = None,
        presence_name: str | None = None,
        presence_detail: Mapping[str, str] | None = None,
        before_push: BeforePush | None = None,
    ) -> None:
        if not store.sync:
            raise PjaiError("a SyncClient needs a store opened with sync=True")
        synced_with = store.meta(STORE_KEY)
        if synced_with is not None and synced_with != store_id:
            raise ConfigError(
                f"this store syncs with store id {synced_with!r}, not {store_id!r}: its "
                "history is that store's; use a new store to join another one"
            )
        self.store = store
        self.store_id = store_id
        self._connect = connect
        self._token = token
        self._batch = batch
        self._ping_interval = ping_interval
        self._answer_timeout = answer_timeout
        self._backoff = backoff
        self._watch_interval = watch_interval
        self._before_push = before_push
        self._random = random.Random(seed)
        self._wake = asyncio.Event()
        self._waiters: dict[str, list[asyncio.Future[EventStatus]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._transport: Transport | None = None
        self._hold_until = 0.0
        self._online_since: float | None = None
        """When the current connection reached ``online`` (loop time)."""
        self._status = SyncStatus("offline", backend_id=store.meta(BACKEND_KEY))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed = asyncio.Event()
        self._behind: list[EventRecord] = []
        """Events the server sent that the store has not rebased onto yet."""
        announcement = None
        if presence_name is not None:
            announcement = PresenceUpdate(name=presence_name, detail=dict(presence_detail or {}))
        self.presence = PeerBook(store.client_id, announcement, lambda: self._committed(None))

    # -- running ------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        """Run in the background until :meth:`stop`."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run())
        return self._task

    async def run(self) -> None:
        """Connect, sync, and reconnect after failures, until cancelled or a final error."""
        self._loop = asyncio.get_running_loop()
        self.store.add_commit_hook(self._committed)  # local commits wake the client
        watching = asyncio.create_task(self._watch())  # and so do other processes'
        try:
            await self._run()
        finally:
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)
            self.store.remove_commit_hook(self._committed)
            if self._status.state not in ("failed", "stopped"):
                self._set(state="stopped")  # cancelled: never report a dead task as online

    async def stop(self) -> None:
        """Disconnect and stop; pending events stay in the store."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # the caller itself is cancelled (a timeout): it is told so
        if self._status.state != "failed":  # a failure stays visible after the stop
            self._set(state="stopped")

    async def _run(self) -> None:
        delay = self._backoff[0]
        while True:
            self._set(state="connecting")
            hold = 0.0
            try:
                await self._connection()
            except _Final as exc:
                self._set(state="failed", last_error=str(exc))
                log.error("sync stopped: %s", exc)
                return
            except (ConnectionClosed, OSError, PjaiError) as exc:
                self._set(state="offline", last_error=str(exc) or type(exc).__name__)
                if isinstance(exc, ConnectionClosed):
                    hold = held_for(exc.retry_after)  # a server that is busy says how long
            except Exception as exc:  # a bug: stop, and say so instead of dying silently
                self._set(state="failed", last_error=f"sync stopped by an internal error: {exc!r}")
                log.exception("sync stopped by an internal error")
                return
            else:
                self._set(state="offline")
            # A connection that stayed online a while starts the backoff over; one a
            # server ended soon after its welcome (a bad frame, an event it must refuse)
            # counts as a failed attempt, or it would be retried ten times a second.
            since, self._online_since = self._online_since, None
            loop = asyncio.get_running_loop()
            if since is not None and loop.time() - since >= self._backoff[1]:
                delay = self._backoff[0]
            # Full jitter: clients that lost the same server do not all return at once,
            # and those it asked to wait do not all return the moment the wait is over.
            await asyncio.sleep(hold + self._random.uniform(0, delay))
            delay = min(self._backoff[1], delay * 2)
            self._set(reconnects=self._status.reconnects + 1)

    # -- status -----------------------------------------------------------------------

    @property
    def status(self) -> SyncStatus:
        """The current status, with the store's confirmed head and pending count."""
        return replace(
            self._status,
            confirmed_head=self.store.confirmed_head.global_seq,
            pending=self.store.pending_count,
        )

    async def synced(self, event_id: str) -> EventStatus:
        """Wait until the event is confirmed or rejected; returns which.

        Wrap it in ``asyncio.timeout()`` to give up after a while.
        """
        status = self.store.status(event_id)
        if status is None:
            raise PjaiError(f"this store has no event {event_id!r}")
        if status != "pending":
            return status
        future: asyncio.Future[EventStatus] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(event_id, []).append(future)
        # A rebase may have settled it between the look above and the registration.
        status = self.store.status(event_id)
        if status != "pending" and status is not None and not future.done():
            future.set_result(status)
        return await future

    async def wait_until(self, check: Callable[[SyncStatus], bool]) -> None:
        """Wait until ``check(status)`` holds (e.g. online and level with the server)."""
        while not check(self.status):
            changed = self._changed
            await changed.wait()

    # -- one connection ------------------------------------------------------------

    async def _connection(self) -> None:
        transport = self._transport = await self._connect()
        self._behind, self._hold_until = [], 0.0  # a hold is one server's word on it
        session = ClientSession(
            self.store_id,
            self.store.client_id,
            self._token,
            backend_id=self._status.backend_id,
            batch=self._batch,
        )
        loop = asyncio.get_running_loop()
        tasks: dict[str, asyncio.Task[Any]] = {}
        hello = session.hello()
        if self.presence.offered:
            hello = msgspec.structs.replace(hello, extensions=[PRESENCE])
        try:
            await self._send(encode(hello))
            receiving = tasks["receive"] = asyncio.create_task(transport.receive())
            waking = tasks["wake"] = asyncio.create_task(self._wake.wait())
            # A server silent for a ping interval gets a ping, and is given up after two;
            # an answer it owes (a welcome, a push's answer, its echo) must come within
            # answer_timeout, pongs or not. Local commits do not count as hearing from it.
            heard = answered_at = loop.time()
            pinged = False
            while True:
                silent_until = heard + self._ping_interval * (2 if pinged else 1)
                owed_until = answered_at + self._answer_timeout
                done, _ = await asyncio.wait(
                    {receiving, waking},
                    timeout=max(0.0, min(silent_until, owed_until) - loop.time()),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if waking in done:
                    self._wake.clear()
                    waking = tasks["wake"] = asyncio.create_task(self._wake.wait())
                now = loop.time()
                if receiving in done:
                    heard, pinged = now, False
                    frames = [receiving.result()]
                    receiving = tasks["receive"] = await arrived(transport, frames, FRAMES_AT_ONCE)
                    if await self._handle(session, frames):
                        answered_at = now
                elif now - heard >= self._ping_interval * 2:
                    raise ConnectionClosed("the server stopped answering")
                elif not pinged and now - heard >= self._ping_interval:
                    await self._send(encode(Ping(nonce=1)))
                    if session.state == "ready":  # a lost frame must not leave us behind
                        cursor = self.store.confirmed_head
                        await self._send(encode(Pull(cursor=cursor, live=True)))
                    pinged = True
                if not session.waiting(self.store.confirmed_head):
                    answered_at = loop.time()
                elif loop.time() - answered_at > self._answer_timeout:
                    raise ConnectionClosed(
                        f"the server owes an answer for {self._answer_timeout:g} s; reconnecting"
                    )
                announcement = self.presence.due(session.state == "ready")
                if announcement is not None:
                    await self._send(encode(announcement))
                await self._step(session)
        finally:
            for task in tasks.values():
                task.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)
            await transport.close()
            self._transport = None
            self.presence.offline()

    async def _handle(self, session: ClientSession, frames: list[bytes]) -> bool:
        """Handle frames that arrived together; whether one answered something (not a
        ping or pong). Their events join those behind, for :meth:`_step` to apply."""
        answered = False
        try:
            for frame in frames:
                try:
                    message = decode(frame)
                except ProtocolError as exc:
                    raise ConnectionClosed(f"the server sent a bad frame: {exc}") from exc
                if isinstance(message, Presence | PresenceRejected):
                    self.presence.heard(message)  # news, not an answer the client waits for
                    continue
                if isinstance(message, Welcome):
                    self.presence.welcomed(message.extensions)
                # What the server owes: a welcome, a push's answer, events. An empty
                # events frame answers only the keep-alive pull, not a push.
                answered |= not isinstance(message, Ping | Pong) and not (
                    isinstance(message, Events) and not message.events
                )
                for action in session.receive(message, self.store.confirmed_head):
                    if isinstance(action, Apply):
                        self._chain(action.events)
                        continue
                    if isinstance(action, Reject):
                        await self._catch_up()  # the events before it first
                    await self._act(action)
        except (ConnectionClosed, _Final):
            with contextlib.suppress(ConnectionClosed):
                await self._catch_up()  # what arrived before the failure still counts
            raise
        if session.state == "ready" and self._status.state != "online":
            if session.backend_id != self._status.backend_id and session.backend_id:
                self.store.set_meta(BACKEND_KEY, session.backend_id)
            if self.store.meta(STORE_KEY) is None:
                self.store.set_meta(STORE_KEY, self.store_id)
            self._online_since = asyncio.get_running_loop().time()
            self._set(state="online", last_error=None, backend_id=session.backend_id)
        if self._status.read_only == session.can_push:
            self._set(read_only=not session.can_push)
        if session.server_head is not None:
            self._set(server_head=session.server_head.global_seq)
        return answered

    async def _act(self, action: Send | Reject | Wait | Fail) -> None:
        if isinstance(action, Send):
            await self._send(encode(action.message))
        elif isinstance(action, Reject):
            result = await asyncio.to_thread(self.store.discard, action.event_id, action.reason)
            self._settle(result)
        elif isinstance(action, Wait):
            log.info("the server asked for pushes to wait %g s: %s", action.seconds, action.detail)
            loop = asyncio.get_running_loop()
            self._hold_until = loop.time() + action.seconds
            loop.call_later(action.seconds, self._wake.set)  # push again right then
        elif action.retry:
            raise ConnectionClosed(
                f"{action.code}: {action.message}", retry_after=action.retry_after
            )
        else:
            raise _Final(f"{action.code}: {action.message}")

    def _chain(self, events: list[EventRecord]) -> None:
        """Add the ``events`` that continue those behind (or the confirmed head)."""
        behind = self._behind
        last = behind[-1].position if behind else self.store.confirmed_head
        for record in events:
            if record.position.key <= last.key:
                continue  # a repeated frame
            if record.parent.key != last.key:
                raise ConnectionClosed(f"events from the server skip past {last}; pulling again")
            if (problem := header_problem(record)) is not None:
                # No SQL primary could journal it: a server keeping to the protocol
                # refuses such a push, so this one is at fault; nothing is applied.
                raise ConnectionClosed(f"the server sent an event it must refuse: {problem}")
            behind.append(record)
            last = record.position

    async def _step(self, session: ClientSession) -> None:
        """Push what is due, then rebase onto the events behind, all in one rebase.

        While a push of ours is in flight they wait for its answer (up to a bound): the
        next push then follows it at once, instead of after a rebase, and so is more
        likely to find the server's head where it was sent for while others write.
        """
        await self._push(session)
        if self._behind and (not session.pushing or len(self._behind) >= BEHIND_EVENTS):
            await self._catch_up()
            await self._push(session)

    async def _catch_up(self) -> None:
        """Rebase the store onto the events behind."""
        upstream, self._behind = self._behind, []
        if not upstream:
            return
        try:
            result = await asyncio.to_thread(self.store.rebase, upstream)
        except RebaseError as exc:
            raise ConnectionClosed(str(exc)) from exc
        self._settle(result)

    async def _push(self, session: ClientSession) -> None:
        """Push the next pending events if the server can take them now: they must
        follow its head as last heard. With events behind, they are pushed as the rebase
        onto those will number them, if the store can tell without rebasing."""
        if asyncio.get_running_loop().time() < self._hold_until or not session.idle:
            return
        behind = self._behind
        if behind:
            confirmed = behind[-1].position
            if session.server_head is None or session.server_head.key != confirmed.key:
                return  # the server has more: a push now would be refused
            if not self.store.pending_count:
                return
            reach = session.reach(confirmed)
            pending = await asyncio.to_thread(self.store.pending_after, behind, reach)
            if pending is None:
                return  # only the rebase can tell
        else:
            confirmed = self.store.confirmed_head
            if not session.may_push(self.store.head, confirmed):
                return  # most frames: everything was sent
            pending = await asyncio.to_thread(self.store.pending)
        if self._before_push is not None:
            pending = await self._cleared(session, pending, confirmed)
        push = session.next_push(pending, confirmed)
        if push is not None:
            await self._send(encode(push))

    async def _cleared(
        self, session: ClientSession, pending: list[EventRecord], confirmed: Position
    ) -> list[EventRecord]:
        """``pending`` up to the first event of the next push that the ``before_push``
        hook holds back; when it holds back the first, the client asks again
        :data:`PUSH_HELD_S` later."""
        assert self._before_push is not None
        unsent = session.unsent(pending, confirmed)  # the last of pending
        if not unsent:
            return pending
        window = unsent[: session.push_size]
        going = min(max(0, await self._before_push(window)), len(window))
        if not going:
            loop = asyncio.get_running_loop()
            self._hold_until = loop.time() + PUSH_HELD_S
            loop.call_later(PUSH_HELD_S, self._wake.set)
        return pending[: len(pending) - len(unsent) + going]

    async def _send(self, frame: bytes) -> None:
        """Send ``frame``; a server that takes nothing for ``answer_timeout`` (it stopped
        reading) ends the connection, as one that stops answering does."""
        assert self._transport is not None
        try:
            async with asyncio.timeout(self._answer_timeout):
                await self._transport.send(frame)
        except TimeoutError as exc:
            raise ConnectionClosed(
                f"the server took no frame for {self._answer_timeout:g} s; reconnecting"
            ) from exc

    # -- bookkeeping ---------------------------------------------------------------

    async def _watch(self) -> None:
        """Wake the client when another process commits to the store file."""
        if self.store.path is None:
            return  # a store in memory has no other writers
        while True:
            await asyncio.sleep(self._watch_interval)
            try:
                changed = await asyncio.to_thread(self.store.refresh)
            except PjaiError as exc:  # the store closed under us: the run is ending
                log.debug("stopped watching the store: %s", exc)
                return
            if changed:
                self._wake.set()
                self._set()  # the pending count may have changed

    def _committed(self, _events: object) -> None:
        # Runs inside the store's commit, on the committing thread.
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    def _settle(self, result: RebaseResult) -> None:
        for record, reason in result.quarantined:
            log.warning("event %s at %s not applied here: %s", record.id, record.position, reason)
        outcomes: list[tuple[str, EventStatus]] = [(i, "confirmed") for i in result.confirmed]
        outcomes += [(record.id, "rejected") for record, _ in result.rejected]
        for event_id, outcome in outcomes:
            for future in self._waiters.pop(event_id, []):
                if not future.done():
                    future.set_result(outcome)
        self._set()

    def _set(self, **changes: object) -> None:
        self._status = replace(self._status, **changes)  # type: ignore[arg-type]
        self._changed.set()
        self._changed = asyncio.Event()
