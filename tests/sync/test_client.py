"""SyncClient against a hub in memory: push, pull, live, offline, rejection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import TypeVar

import msgspec
import pytest

from pjai.errors import ConfigError, SqlUnavailableError
from pjai.schema import Event, EventRecord, MemoryDeleted, MemoryUpdated, Position
from pjai.schema.records import ROOT
from pjai.schema.types import new_id, utc_now
from pjai.store import Store
from pjai.sync.client import SyncClient
from pjai.sync.protocol import (
    VERSIONS,
    Events,
    Hello,
    Message,
    Pull,
    Push,
    PushAck,
    PushRejected,
    Welcome,
    decode,
    encode,
)
from pjai.sync.server import session as server_session
from pjai.sync.server.hub import Hub
from pjai.sync.server.log import MemoryLog
from pjai.sync.server.tokens import RateLimiter
from pjai.sync.transport import Transport, memory_pipe
from tests.helpers import memory, persona
from tests.sync.records import records

M = TypeVar("M", bound=Message)

pytestmark = pytest.mark.anyio


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    hub = Hub(MemoryLog(), None, poll_interval=0.05)
    await hub.start()
    yield hub
    await hub.stop()


async def test_a_commit_reaches_another_client(hub: Hub) -> None:
    with Store.memory(sync=True) as a, Store.memory(sync=True) as b:
        ca = SyncClient(a, hub.memory_connector(), store_id="s1")
        cb = SyncClient(b, hub.memory_connector(), store_id="s1")
        ca.start()
        cb.start()
        seen: list[int] = []
        live = b.live("SELECT count(*) AS n FROM memories")
        live.subscribe(lambda rows: seen.append(rows[0].n))
        records = a.commit(persona("p1"), memory("m1"), memory("m2"))
        async with asyncio.timeout(5):
            assert await ca.synced(records[-1].id) == "confirmed"
            await cb.wait_until(lambda s: s.confirmed_head >= 3)
        assert seen[-1] == 2
        assert a.state_hash() == b.state_hash()
        b.commit(MemoryUpdated(memory_id="m1", persona_id="p1", content="from b"))
        async with asyncio.timeout(5):
            await ca.wait_until(lambda s: s.confirmed_head >= 4)
            await cb.wait_until(lambda s: s.level)
        assert a.query("SELECT content FROM memories WHERE id = 'm1'")[0].content == "from b"
        await ca.stop()
        await cb.stop()


async def test_concurrent_edits_converge_and_conflicts_are_recorded(hub: Hub) -> None:
    with Store.memory(sync=True) as a, Store.memory(sync=True) as b:
        a.commit(persona("p1"), memory("m1"))
        ca = SyncClient(a, hub.memory_connector(), store_id="s1")
        ca.start()
        async with asyncio.timeout(5):
            await ca.wait_until(lambda s: s.level)
        await ca.stop()
        cb = SyncClient(b, hub.memory_connector(), store_id="s1")
        cb.start()
        async with asyncio.timeout(5):
            await cb.wait_until(lambda s: s.level)
        await cb.stop()
        # Offline on both sides: a deletes m1, b updates it.
        (delete,) = a.commit(MemoryDeleted(memory_id="m1", persona_id="p1"))
        (update,) = b.commit(MemoryUpdated(memory_id="m1", persona_id="p1", content="late"))
        ca = SyncClient(a, hub.memory_connector(), store_id="s1")
        ca.start()
        async with asyncio.timeout(5):
            await ca.wait_until(lambda s: s.level)
        cb = SyncClient(b, hub.memory_connector(), store_id="s1")
        cb.start()
        async with asyncio.timeout(5):
            assert await cb.synced(update.id) == "rejected"
            await cb.wait_until(lambda s: s.level)
        assert a.state_hash() == b.state_hash()
        (rejected,) = b.rejected()
        # The audit record says which event lost, why, and which event won.
        assert rejected.record.id == update.id
        assert rejected.error is not None
        assert "no live memory 'm1'" in rejected.error
        assert f"v1.MemoryDeleted {delete.id}" in rejected.error
        assert "won" in rejected.error
        await ca.stop()
        await cb.stop()


class FlakyLog(MemoryLog):
    """A memory log whose reads fail while ``failing`` is set, like a database going away."""

    failing = False

    def read(self, store_id: str, after: Position, limit: int) -> list[EventRecord]:
        if self.failing:
            raise SqlUnavailableError("reading the sync log: the database is unreachable")
        return super().read(store_id, after, limit)


async def test_a_server_failure_is_reported_and_the_client_comes_back() -> None:
    log = FlakyLog()
    hub = Hub(log, None, poll_interval=0.05)
    await hub.start()
    with Store.memory(sync=True) as a:
        client = SyncClient(a, hub.memory_connector(), store_id="s1", backoff=(0.01, 0.05))
        client.start()
        async with asyncio.timeout(5):
            await client.wait_until(lambda s: s.level)
        log.failing = True
        (record,) = a.commit(persona("p1"))
        async with asyncio.timeout(5):
            # The push is appended, but its echo cannot be read: the server says so.
            await client.wait_until(lambda s: "server_error" in (s.last_error or ""))
        assert "SqlUnavailableError" in (client.status.last_error or "")
        assert "unreachable" not in (client.status.last_error or "")  # details stay there
        assert a.status(record.id) == "pending"
        log.failing = False
        async with asyncio.timeout(5):
            assert await client.synced(record.id) == "confirmed"
        assert client.status.reconnects >= 1
        await client.stop()
    await hub.stop()


async def confirmed_though_held_back(hub: Hub, events: list[Event], within: float) -> None:
    """A client of ``hub`` pushing ``events`` five at a time is held back by its rate
    limits, comes back by itself and has them all confirmed within ``within`` seconds."""
    await hub.start()
    with Store.memory(sync=True) as a:
        client = SyncClient(a, hub.memory_connector(), store_id="s1", batch=5)
        client.start()
        records = a.commit(*events)
        async with asyncio.timeout(within):
            assert await client.synced(records[-1].id) == "confirmed"
        assert hub.log.head("s1").global_seq == len(events)
        limited = hub.metrics.registry.get_sample_value(
            "pjai_sync_pushes_total", {"result": "rate_limited"}
        )
        assert limited is not None
        assert limited >= 1
        await client.stop()
    await hub.stop()


async def test_a_rate_limited_client_pushes_again_when_allowed() -> None:
    hub = Hub(MemoryLog(), None, limiter=RateLimiter(rate=40, burst=5), poll_interval=0.05)
    # The ping interval (15 s) would be too late.
    await confirmed_though_held_back(hub, [persona("p1"), *[memory(f"m{i}") for i in range(14)]], 5)


async def test_a_client_over_its_byte_budget_pushes_its_backlog_more_slowly() -> None:
    # Refusals for bytes are rate_limited ones: the client waits as told, and a large
    # backlog still syncs, a budget at a time.
    budget = RateLimiter(rate=32 * 1024, burst=16 * 1024)  # a push of 5 events fits
    hub = Hub(MemoryLog(), None, byte_limiter=budget, poll_interval=0.05)
    wide = [memory(f"m{i}", content="w" * 1_000) for i in range(59)]
    await confirmed_though_held_back(hub, [persona("p1"), *wide], 20)


async def test_a_store_keeps_to_the_store_id_it_synced_with(hub: Hub) -> None:
    with Store.memory(sync=True) as a:
        client = SyncClient(a, hub.memory_connector(), store_id="team-1")
        client.start()
        async with asyncio.timeout(5):
            await client.wait_until(lambda s: s.level)
        await client.stop()
        with pytest.raises(ConfigError, match="syncs with store id 'team-1', not 'default'"):
            SyncClient(a, hub.memory_connector(), store_id="default")


async def test_a_restarted_client_still_wakes_on_commits(hub: Hub) -> None:
    with Store.memory(sync=True) as a:
        client = SyncClient(a, hub.memory_connector(), store_id="s1")
        for _ in range(2):
            client.start()
            async with asyncio.timeout(5):
                await client.wait_until(lambda s: s.level)
            (record,) = a.commit(persona(f"p{a.head.global_seq}"))
            async with asyncio.timeout(5):  # well before a 15 s ping would push it
                assert await client.synced(record.id) == "confirmed"
            await client.stop()
        await client.stop()  # stopping twice is harmless


async def test_a_store_nobody_watches_is_forgotten(hub: Hub) -> None:
    with Store.memory(sync=True) as a:
        client = SyncClient(a, hub.memory_connector(), store_id="s1")
        client.start()
        async with asyncio.timeout(5):
            await client.wait_until(lambda s: s.level)
        assert set(hub.feeds) == {"s1"}
        await client.stop()
        async with asyncio.timeout(5):
            while hub.connections:  # noqa: ASYNC110  # the server side ends a moment later
                await asyncio.sleep(0.01)
        assert hub.feeds == {}


def unappliable(after: EventRecord) -> EventRecord:
    """An event an older server accepted that no store can apply: a count past 64 bits."""
    args = b'{"memory_id":"p1-m0","persona_id":"p1","count":100000000000000000000}'
    return EventRecord(
        id=new_id(),
        name="v1.MemoryAccessed",
        args=msgspec.Raw(args),
        position=after.position.next(0),
        parent=after.position,
        client_id="old",
        session_id="old",
        at=utc_now(),
    )


async def test_an_event_no_store_can_apply_is_quarantined_and_sync_goes_on(hub: Hub) -> None:
    history = records(2)
    poison = unappliable(history[-1])
    hub.log.append("s1", [*history, poison])  # as an older server would have taken it
    with Store.memory(sync=True) as a, Store.memory(sync=True) as b:
        ca = SyncClient(a, hub.memory_connector(), store_id="s1")
        cb = SyncClient(b, hub.memory_connector(), store_id="s1")
        ca.start()
        cb.start()
        async with asyncio.timeout(5):
            await ca.wait_until(lambda s: s.level and s.confirmed_head == 3)
            mine = a.commit(memory("m1"))
            assert await ca.synced(mine[0].id) == "confirmed"
            await cb.wait_until(lambda s: s.level and s.confirmed_head == 4)
        for client, store in ((ca, a), (cb, b)):
            assert client.status.state == "online"
            assert client.status.last_error is None
            (quarantined,) = store.quarantined()
            assert quarantined.record.id == poison.id
            assert quarantined.error is not None
            assert "field 'count'" in quarantined.error
        assert a.state_hash() == b.state_hash()
        assert b.query("SELECT count(*) AS n FROM memories WHERE id = 'm1'")[0].n == 1
        b.commit(memory("m2"))  # and keeps syncing past it
        async with asyncio.timeout(5):
            await ca.wait_until(lambda s: s.confirmed_head == 5)
        await ca.stop()
        await cb.stop()


async def test_a_client_task_that_dies_says_failed_with_the_error(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.log.append("s1", records(2))
    with Store.memory(sync=True) as store:

        def broken(upstream: object) -> None:
            raise RuntimeError("a bug in rebase")

        monkeypatch.setattr(store, "rebase", broken)
        client = SyncClient(store, hub.memory_connector(), store_id="s1")
        task = client.start()
        async with asyncio.timeout(5):
            await client.wait_until(lambda s: s.state == "failed")
        assert client.status.last_error is not None
        assert "a bug in rebase" in client.status.last_error
        await asyncio.wait_for(task, 5)  # the task ended, it does not linger
        await client.stop()
        assert client.status.state == "failed"


# -- catching up with a backlog while others write ----------------------------------


def replay(upstream: Sequence[EventRecord]) -> str:
    with Store.memory(sync=True) as fresh:
        fresh.rebase(upstream)
        return fresh.state_hash()


class ScriptedServer:
    """The server end of one in-memory connection, played frame by frame by a test."""

    def __init__(self) -> None:
        self.client_end, self.end = memory_pipe()

    async def connect(self) -> Transport:
        return self.client_end

    async def expect(self, kind: type[M]) -> M:
        message = decode(await self.end.receive())
        assert isinstance(message, kind), message
        return message

    async def send(self, *messages: Message) -> None:
        """Send frames in one go (an in-memory send never yields): they arrive together."""
        for message in messages:
            await self.end.send(encode(message))

    async def welcome(self, head: Position) -> None:
        await self.expect(Hello)
        await self.send(Welcome(version=1, backend_id="b1", store_id="s1", head=head, role="write"))
        await self.expect(Pull)


async def test_frames_that_arrived_together_are_applied_with_one_rebase() -> None:
    upstream = records(7, client_id="c2")
    server = ScriptedServer()
    with Store.memory(sync=True) as store:
        rebases: list[object] = []
        store.add_rebase_hook(rebases.append)
        client = SyncClient(store, server.connect, store_id="s1")
        client.start()
        async with asyncio.timeout(5):
            await server.welcome(upstream[-1].position)
            head = upstream[-1].position
            await server.send(
                Events(events=upstream[:3], head=head, more=True),
                Events(events=upstream[3:5], head=head, more=True),
                Events(events=upstream[5:], head=head, more=False),
            )
            await client.wait_until(lambda s: s.confirmed_head == 7)
        assert len(rebases) == 1
        await client.stop()


async def test_a_client_pushes_ahead_of_its_rebase_and_past_an_overtaken_push() -> None:
    theirs = records(3, client_id="c2")  # persona p1 and two memories, from another client
    server = ScriptedServer()
    with Store.memory(sync=True) as store:
        ours = store.commit(persona("p9"), memory("x1", "p9"), memory("x2", "p9"))
        rebases: list[object] = []
        store.add_rebase_hook(rebases.append)
        client = SyncClient(store, server.connect, store_id="s1")
        client.start()
        async with asyncio.timeout(5):
            await server.welcome(theirs[0].position)
            await server.send(Events(events=theirs[:1], head=theirs[0].position, more=False))
            # Pushed as the rebase onto that event will number them, before it runs.
            first = await server.expect(Push)
            assert [r.id for r in first.events] == [r.id for r in ours]
            assert [r.position.global_seq for r in first.events] == [2, 3, 4]
            assert first.events[0].parent == theirs[0].position
            assert store.confirmed_head == ROOT
            assert rebases == []
            # Another client's event takes the place of the push's first: it is bound to
            # be refused, and the next push follows that event at once.
            await server.send(Events(events=theirs[1:2], head=theirs[1].position, more=False))
            second = await server.expect(Push)
            assert [r.position.global_seq for r in second.events] == [3, 4, 5]
            assert rebases == []
            head = second.events[-1].position
            await server.send(
                PushRejected(id=first.id, reason="server_ahead", head=theirs[1].position),
                PushAck(id=second.id, head=head, accepted=3),
                Events(events=second.events, head=head, more=False),
            )
            for record in ours:
                assert await client.synced(record.id) == "confirmed"
        assert len(rebases) == 1  # everything that came, in one rebase
        assert [entry.record.id for entry in store.events()] == [
            theirs[0].id,
            theirs[1].id,
            *[r.id for r in ours],
        ]
        assert store.state_hash() == replay([*theirs[:2], *second.events])
        assert client.status.state == "online"
        await client.stop()


async def test_a_backlog_is_confirmed_while_another_client_keeps_writing(hub: Hub) -> None:
    with Store.memory(sync=True) as writer, Store.memory(sync=True) as back:
        (created,) = writer.commit(persona("p1"))
        writing = SyncClient(writer, hub.memory_connector(), store_id="s1")
        returning = SyncClient(back, hub.memory_connector(), store_id="s1")
        writing.start()
        returning.start()
        async with asyncio.timeout(10):
            await writing.synced(created.id)
            await returning.wait_until(lambda s: s.level and s.confirmed_head == 1)
        await returning.stop()
        backlog = back.commit(*[memory(f"back-{i}") for i in range(1_000)])
        caught_up = asyncio.Event()

        async def write() -> None:
            # One event at a time, the next as soon as the last is confirmed: a writer
            # that never pauses, as long as the returning client has not caught up.
            index = 0
            while not caught_up.is_set():
                (record,) = writer.commit(memory(f"w-{index}"))
                index += 1
                await writing.synced(record.id)

        async with asyncio.timeout(60):
            writes = asyncio.create_task(write())
            await writing.wait_until(lambda s: s.confirmed_head >= 10)
            returning.start()
            assert await returning.synced(backlog[-1].id) == "confirmed"
            caught_up.set()
            await writes
            head = hub.log.head("s1").global_seq  # nobody writes now
            for client in (returning, writing):
                await client.wait_until(lambda s: s.level and s.confirmed_head == head)
        assert head >= 1_011  # the persona, the backlog, and the writer went on meanwhile
        assert back.rejected() == []
        assert all(back.status(r.id) == "confirmed" for r in backlog)
        assert back.state_hash() == writer.state_hash()
        await writing.stop()
        await returning.stop()


async def test_stores_holding_the_same_event_ids_each_get_their_own_events(hub: Hub) -> None:
    """An archive imported into two stores keeps its event ids: a batch one store's
    pullers were sent must never go to the other's."""
    mine = records(3)
    theirs = [
        msgspec.structs.replace(r, args=msgspec.Raw(bytes(r.args).replace(b"content", b"cOntent")))
        if r.name == "v1.MemoryAdded"
        else r
        for r in mine
    ]
    hub.log.append("s1", mine)
    hub.log.append("s2", theirs)
    for store_id, expected in (("s1", mine), ("s2", theirs), ("s1", mine)):
        transport = await hub.memory_connector()()
        await transport.send(
            encode(Hello(versions=list(VERSIONS), store_id=store_id, client_id="c1"))
        )
        assert isinstance(decode(await transport.receive()), Welcome)
        await transport.send(encode(Pull(cursor=ROOT, live=True)))
        pulled = decode(await transport.receive())
        assert isinstance(pulled, Events)
        assert [bytes(r.args) for r in pulled.events] == [bytes(r.args) for r in expected]
        await transport.close()


# -- a server that breaks the protocol ----------------------------------------------


class Connections:
    """The server end of each connection a client makes, in order."""

    def __init__(self) -> None:
        self.ends: asyncio.Queue[Transport] = asyncio.Queue()

    async def connect(self) -> Transport:
        client_end, server_end = memory_pipe()
        self.ends.put_nowait(server_end)
        return client_end

    async def welcome(self, head: Position) -> Transport:
        """The next connection's end, once it said hello, was welcomed and pulled."""
        end = await self.ends.get()
        assert isinstance(decode(await end.receive()), Hello)
        welcome = Welcome(version=1, backend_id="b1", store_id="s1", head=head, role="write")
        await end.send(encode(welcome))
        assert isinstance(decode(await end.receive()), Pull)
        return end


async def test_an_event_the_server_should_have_refused_is_not_applied() -> None:
    # No SQL primary could journal a session id with a NUL: the client refuses the frame.
    first, second = records(2, client_id="c2")
    second = msgspec.structs.replace(second, session_id="s\x00")
    server = Connections()
    with Store.memory(sync=True) as store:
        client = SyncClient(store, server.connect, store_id="s1", backoff=(0.05, 0.1))
        client.start()
        async with asyncio.timeout(5):
            end = await server.welcome(second.position)
            frame = Events(events=[first, second], head=second.position, more=False)
            await end.send(encode(frame))
            await client.wait_until(lambda s: "must refuse" in (s.last_error or ""))
        assert client.status.last_error is not None
        assert "its session_id must not contain the NUL character" in client.status.last_error
        assert store.confirmed_head.key < second.position.key  # the good one may be in
        await client.stop()


async def test_a_rate_limited_hold_ends_with_the_connection() -> None:
    server = Connections()
    with Store.memory(sync=True) as store:
        (mine,) = store.commit(persona("p1"))
        client = SyncClient(store, server.connect, store_id="s1", backoff=(0.05, 0.1))
        client.start()
        async with asyncio.timeout(5):  # far less than the minute the first server asks
            end = await server.welcome(ROOT)
            push = decode(await end.receive())
            assert isinstance(push, Push)
            held = PushRejected(id=push.id, reason="rate_limited", retry_after=3600.0)
            await end.send(encode(held))
            await end.close()
            end = await server.welcome(ROOT)
            push = decode(await end.receive())
            assert isinstance(push, Push)
            assert [r.id for r in push.events] == [mine.id]
        await client.stop()


async def test_events_a_before_push_hook_holds_back_wait_and_then_go_in_order(hub: Hub) -> None:
    held = {"p2"}  # the hook holds back the events of these personas, and all after
    asked: list[list[str]] = []

    async def before_push(events: Sequence[EventRecord]) -> int:
        names = [msgspec.json.decode(e.args)["persona_id"] for e in events]
        asked.append(names)
        return next((n for n, name in enumerate(names) if name in held), len(names))

    with Store.memory(sync=True) as a:
        client = SyncClient(a, hub.memory_connector(), store_id="s1", before_push=before_push)
        client.start()
        async with asyncio.timeout(5):
            await client.wait_until(lambda s: s.level)
        first, blocked, after = a.commit(persona("p1"), persona("p2"), persona("p3"))
        async with asyncio.timeout(5):
            assert await client.synced(first.id) == "confirmed"
            while len(asked) < 3:  # noqa: ASYNC110  # asked again while it holds back
                await asyncio.sleep(0.05)
        assert [r.id for r in hub.log.read("s1", ROOT, 10)] == [first.id]
        assert client.status.pending == 2
        held.clear()
        async with asyncio.timeout(5):
            assert await client.synced(after.id) == "confirmed"
        assert [r.id for r in hub.log.read("s1", ROOT, 10)] == [first.id, blocked.id, after.id]
        assert asked[0] == ["p1", "p2", "p3"]  # the whole push, in order
        assert all(names == ["p2", "p3"] for names in asked[1:])
        await client.stop()


async def test_a_push_past_the_store_s_quota_waits_on_the_device_until_there_is_room(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(server_session, "QUOTA_RETRY_S", 0.2)
    log = MemoryLog(max_store_bytes=2_000)
    hub = Hub(log, None, poll_interval=0.05)
    await hub.start()
    try:
        with Store.memory(sync=True) as a:
            client = SyncClient(a, hub.memory_connector(), store_id="s1")
            client.start()
            (first,) = a.commit(persona("p1"))
            async with asyncio.timeout(5):
                assert await client.synced(first.id) == "confirmed"
            (large,) = a.commit(memory("m1", content="x" * 4_000))
            await asyncio.sleep(0.5)  # asked to wait, and asked again
            assert [r.id for r in log.read("s1", ROOT, 10)] == [first.id]
            assert client.status.state == "online"
            assert a.status(large.id) == "pending"  # kept on the device
            log.max_store_bytes = None  # the operator gives the store room
            async with asyncio.timeout(5):
                assert await client.synced(large.id) == "confirmed"
            await client.stop()
    finally:
        await hub.stop()
