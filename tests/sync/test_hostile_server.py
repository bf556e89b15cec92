"""A sync server that is buggy or hostile: the client takes in nothing it should not,
keeps its events, and neither spins nor hangs."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from pjai.schema.records import ROOT
from pjai.store import Store
from pjai.sync.client import SyncClient
from pjai.sync.clientside import held_for
from pjai.sync.presence import MAX_PEERS, PRESENCE
from pjai.sync.protocol import (
    Error,
    Events,
    Hello,
    Message,
    Peer,
    Ping,
    Pong,
    Presence,
    Pull,
    Push,
    PushAck,
    PushRejected,
    Welcome,
    decode,
    encode,
)
from pjai.sync.transport import ConnectionClosed, Transport, memory_pipe
from tests.helpers import memory, persona
from tests.sync.records import records

pytestmark = pytest.mark.anyio

Serve = Callable[[Transport], Awaitable[None]]


def serving(serve: Serve) -> tuple[Callable[[], Awaitable[Transport]], list[int]]:
    """A connector whose every connection is served by ``serve``; and the count of
    connections made."""
    made: list[int] = []

    async def connect() -> Transport:
        client_end, server_end = memory_pipe()
        made.append(1)

        async def run() -> None:
            with contextlib.suppress(ConnectionClosed):
                await serve(server_end)

        asyncio.get_running_loop().create_task(run())
        return client_end

    return connect, made


def welcome(store_id: str = "s1", **more: object) -> Welcome:
    return Welcome(version=1, backend_id="b1", store_id=store_id, head=ROOT, role="write", **more)


async def answer_keep_alive(end: Transport, message: object) -> None:
    if isinstance(message, Pull):
        await end.send(encode(Events(events=[], head=ROOT, more=False)))
    elif isinstance(message, Ping):
        await end.send(encode(Pong(nonce=message.nonce)))


async def test_a_welcome_to_another_store_takes_nothing_in_and_pushes_nothing() -> None:
    theirs = records(3, persona_id="other-tenant", client_id="c2")
    pushed: list[Push] = []

    async def serve(end: Transport) -> None:
        assert isinstance(decode(await end.receive()), Hello)
        head = theirs[-1].position
        wrong = Welcome(version=1, backend_id="b1", store_id="s2", head=head, role="write")
        await end.send(encode(wrong))
        await end.send(encode(Events(events=theirs, head=head, more=False)))
        while True:
            if isinstance(message := decode(await end.receive()), Push):
                pushed.append(message)

    connect, _ = serving(serve)
    with Store.memory(sync=True) as store:
        store.commit(persona("secret"))
        client = SyncClient(store, connect, store_id="s1", backoff=(0.05, 0.1))
        client.start()
        async with asyncio.timeout(5):
            await client.wait_until(lambda s: s.state == "failed")
        await asyncio.sleep(0.2)
        await client.stop()
        assert pushed == []
        assert store.confirmed_head == ROOT
        assert store.pending_count == 1
        assert client.status.last_error is not None
        assert "welcomed this client to store 's2', not 's1'" in client.status.last_error


async def test_a_push_lost_while_pings_and_pulls_are_answered_is_sent_again() -> None:
    pushes: list[Push] = []

    async def serve(end: Transport) -> None:
        decode(await end.receive())
        await end.send(encode(welcome()))
        while True:
            message = decode(await end.receive())
            if not isinstance(message, Push):
                await answer_keep_alive(end, message)
                continue
            pushes.append(message)
            if len(pushes) == 1:
                continue  # lost on the way
            head = message.events[-1].position
            await end.send(encode(PushAck(id=message.id, head=head, accepted=1)))
            await end.send(encode(Events(events=message.events, head=head, more=False)))

    connect, _ = serving(serve)
    with Store.memory(sync=True) as store:
        (mine,) = store.commit(persona("p1"))
        client = SyncClient(
            store,
            connect,
            store_id="s1",
            ping_interval=0.2,
            answer_timeout=0.5,
            backoff=(0.01, 0.1),
        )
        client.start()
        try:
            async with asyncio.timeout(5):
                assert await client.synced(mine.id) == "confirmed"
        finally:
            await client.stop()
    assert len(pushes) == 2


class Deaf:
    """A connection whose other end reads nothing: a send never completes."""

    def __init__(self) -> None:
        self.closed = False

    async def send(self, frame: bytes) -> None:
        await asyncio.Event().wait()

    async def receive(self) -> bytes:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = True


async def test_a_server_that_reads_nothing_is_given_up_and_the_client_stops() -> None:
    made: list[Deaf] = []

    async def connect() -> Transport:
        made.append(Deaf())
        return made[-1]

    with Store.memory(sync=True) as store:
        store.commit(persona("p1"))
        client = SyncClient(store, connect, store_id="s1", answer_timeout=0.3, backoff=(0.01, 0.02))
        client.start()
        async with asyncio.timeout(5):
            await client.wait_until(lambda _: len(made) >= 3)  # it reconnects, again and again
            assert client.status.last_error == "the server took no frame for 0.3 s; reconnecting"
            await client.stop()
        assert all(deaf.closed for deaf in made[:-1])


async def test_a_stop_under_the_caller_s_timeout_lets_the_timeout_through() -> None:
    class SlowToClose(Deaf):
        async def send(self, frame: bytes) -> None:
            pass

        async def close(self, code: int = 1000, reason: str = "") -> None:
            await asyncio.sleep(5)

    async def connect() -> Transport:
        return SlowToClose()

    with Store.memory(sync=True) as store:
        client = SyncClient(store, connect, store_id="s1")
        client.start()
        await asyncio.sleep(0.1)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await client.stop()


@contextlib.asynccontextmanager
async def shown(peers: list[Peer]) -> AsyncIterator[SyncClient]:
    """A running client whose server shows it ``peers`` once, then only keeps it alive."""

    async def serve(end: Transport) -> None:
        decode(await end.receive())
        await end.send(encode(welcome(extensions=[PRESENCE])))
        await end.send(encode(Presence(peers=peers)))
        while True:
            await answer_keep_alive(end, decode(await end.receive()))

    connect, _ = serving(serve)
    with Store.memory(sync=True) as store:
        client = SyncClient(store, connect, store_id="s1", presence_name="me")
        client.start()
        try:
            yield client
        finally:
            await client.stop()


async def test_a_peer_seen_at_a_time_utc_cannot_hold_is_left_out() -> None:
    seen = datetime.now(UTC)
    peers = [
        Peer(
            client_id="far",
            session_id="x1",
            name="far",
            state="online",
            detail={},
            last_seen=datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
        ),
        Peer(
            client_id="near",
            session_id="x2",
            name="near",
            state="online",
            detail={},
            last_seen=seen,
        ),
    ]

    async with shown(peers) as client:
        async with asyncio.timeout(5):
            await client.wait_until(lambda s: s.state == "online")
            await asyncio.sleep(0.3)
        assert [(p.name, p.last_seen) for p in client.presence.peers] == [("near", seen)]
        assert client.status.state == "online"


def answering_pushes(
    answer: Callable[[Push], Message],
) -> tuple[Callable[[], Awaitable[Transport]], list[int], list[Push]]:
    """A connector to a server that welcomes each connection and answers each push with
    ``answer(push)``; the connections made and the pushes, as they come."""
    pushes: list[Push] = []

    async def serve(end: Transport) -> None:
        decode(await end.receive())
        await end.send(encode(welcome()))
        while True:
            message = decode(await end.receive())
            if isinstance(message, Push):
                pushes.append(message)
                await end.send(encode(answer(message)))
            else:
                await answer_keep_alive(end, message)

    connect, made = serving(serve)
    return connect, made, pushes


async def pushes_answered_with(answer: Callable[[Push], Message]) -> tuple[list[Push], int]:
    """The pushes a client with one pending event makes in a second to a server that
    answers each with ``answer(push)``, and the connections it makes; its event stays
    pending."""
    connect, made, pushes = answering_pushes(answer)
    with Store.memory(sync=True) as store:
        store.commit(persona("p1"))
        client = SyncClient(store, connect, store_id="s1", backoff=(0.2, 0.2))
        client.start()
        await asyncio.sleep(1)
        await client.stop()
        assert store.pending_count == 1
    return pushes, len(made)


async def test_a_push_refused_as_behind_by_a_server_not_ahead_is_not_sent_again_at_once() -> None:
    pushes, made = await pushes_answered_with(
        lambda push: PushRejected(id=push.id, reason="server_ahead", head=ROOT)
    )
    # One push a connection, a connection every 0.1 s or so (full jitter of 0.2 s): not
    # thousands of pushes a second.
    assert 1 <= len(pushes) <= made <= 25


async def test_an_acknowledgement_short_of_the_push_is_not_answered_by_pushing_again() -> None:
    # "Appended", yet the head stays where it was.
    pushes, made = await pushes_answered_with(
        lambda push: PushAck(id=push.id, head=ROOT, accepted=1)
    )
    assert 1 <= len(pushes) <= made <= 25


async def test_events_past_the_head_the_server_names_move_its_head_on() -> None:
    theirs = records(3, persona_id="p2", client_id="c2")
    pushed = asyncio.Event()

    async def serve(end: Transport) -> None:
        decode(await end.receive())
        await end.send(encode(welcome()))
        sent = False
        while True:
            message = decode(await end.receive())
            if isinstance(message, Push):  # one sent before the events is lost
                if message.events[0].parent == theirs[-1].position:
                    pushed.set()
            elif isinstance(message, Pull) and not sent:  # events past the head it names
                await end.send(encode(Events(events=theirs, head=ROOT, more=False)))
                sent = True
            else:
                await answer_keep_alive(end, message)

    connect, _ = serving(serve)
    with Store.memory(sync=True) as store:
        store.commit(persona("p1"))
        client = SyncClient(store, connect, store_id="s1")
        client.start()
        try:
            async with asyncio.timeout(5):
                await pushed.wait()
            assert client.status.server_head == 3
        finally:
            await client.stop()


async def test_a_server_that_welcomes_then_sends_garbage_is_retried_ever_later() -> None:
    async def serve(end: Transport) -> None:
        decode(await end.receive())
        await end.send(encode(welcome()))
        decode(await end.receive())  # the pull: the client is online
        await end.send(b'{"type": "events", "events": 1}')
        await asyncio.Event().wait()

    connect, made = serving(serve)
    with Store.memory(sync=True) as store:
        client = SyncClient(store, connect, store_id="s1", backoff=(0.05, 10.0), seed=1)
        client.start()
        await asyncio.sleep(1)
        await client.stop()
    # The delay doubles from 0.05 s as for a server that cannot be reached: a handful of
    # connections, not one every 25 ms or so as after connections that worked.
    assert 2 <= len(made) <= 12


async def test_a_roster_longer_than_a_server_may_send_keeps_the_latest_seen() -> None:
    seen = datetime.now(UTC)
    peers = [
        Peer(
            client_id=f"c{i}",
            session_id=f"x{i}",
            name=f"n{i}",
            state="online",
            detail={},
            last_seen=seen + timedelta(seconds=i),
        )
        for i in range(MAX_PEERS + 50)
    ]

    async with shown(peers) as client:
        async with asyncio.timeout(5):
            await client.presence.wait(bool)
        assert client.presence.peers == peers[-MAX_PEERS:]


@pytest.mark.parametrize("refusal", ["before the handshake", "at the hello"])
async def test_a_server_that_says_it_is_busy_is_left_alone_as_long_as_it_asked(
    refusal: str,
) -> None:
    """A refusal as too soon, with the seconds to wait (a 429 before the handshake, or
    an ``error`` ``rate_limited`` at the hello), holds the next connection back that
    long, whatever the backoff: a client does not hammer a server that is shedding."""
    attempts: list[float] = []
    connected = asyncio.Event()

    async def serve(end: Transport) -> None:
        assert isinstance(decode(await end.receive()), Hello)
        if len(attempts) == 1:
            busy = Error(code="rate_limited", message="too many connections", retry_after=0.5)
            await end.send(encode(busy))
            return
        await end.send(encode(welcome()))
        connected.set()
        while True:
            await answer_keep_alive(end, decode(await end.receive()))

    served, _ = serving(serve)

    async def connect() -> Transport:
        attempts.append(asyncio.get_running_loop().time())
        if refusal == "before the handshake" and len(attempts) == 1:
            raise ConnectionClosed("cannot connect: HTTP 429", retry_after=0.5)
        return await served()

    with Store.memory(sync=True) as store:
        client = SyncClient(store, connect, store_id="s1", backoff=(0.01, 0.02))
        client.start()
        async with asyncio.timeout(10):
            await connected.wait()
        await client.stop()
    assert len(attempts) == 2
    assert attempts[1] - attempts[0] >= 0.5


@pytest.mark.parametrize(
    ("asked", "held"), [(None, 0.0), (-1.0, 0.0), (math.nan, 0.0), (2.5, 2.5), (86_400.0, 60.0)]
)
def test_the_wait_a_server_asks_for_is_taken_within_reason(
    asked: float | None, held: float
) -> None:
    assert held_for(asked) == held


async def test_a_server_refusing_every_push_as_invalid_loses_none_of_the_writes() -> None:
    # Each refusal would roll back the event named and every one after it that needs it.
    connect, _, pushes = answering_pushes(
        lambda push: PushRejected(id=push.id, reason="invalid_event", index=0)
    )
    with Store.memory(sync=True) as store:
        store.commit(persona("p1"), *(memory(f"m{n}") for n in range(3)))
        client = SyncClient(store, connect, store_id="s1", backoff=(0.05, 0.05))
        client.start()
        async with asyncio.timeout(10):
            await client.wait_until(lambda status: status.state == "failed")
        await client.stop()
        assert store.pending_count == 4
        assert store.rejected() == []
        assert len(pushes) == 1  # and no more: sync stopped
        assert "which this device finds valid" in (client.status.last_error or "")
