"""SyncClient against a hub in memory: push, pull, live, offline, rejection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec
import pytest

from pjai.errors import ConfigError, SqlUnavailableError
from pjai.schema import EventRecord, MemoryDeleted, MemoryUpdated, Position
from pjai.schema.types import new_id, utc_now
from pjai.store import Store
from pjai.sync.client import SyncClient
from pjai.sync.hub import Hub
from pjai.sync.log import MemoryLog
from pjai.sync.tokens import RateLimiter
from tests.helpers import memory, persona
from tests.sync.records import records

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


async def test_a_rate_limited_client_pushes_again_when_allowed() -> None:
    hub = Hub(MemoryLog(), None, limiter=RateLimiter(rate=40, burst=5), poll_interval=0.05)
    await hub.start()
    with Store.memory(sync=True) as a:
        client = SyncClient(a, hub.memory_connector(), store_id="s1", batch=5)
        client.start()
        records = a.commit(persona("p1"), *[memory(f"m{i}") for i in range(14)])
        async with asyncio.timeout(5):  # the ping interval (15 s) would be too late
            assert await client.synced(records[-1].id) == "confirmed"
        limited = hub.metrics.registry.get_sample_value(
            "pjai_sync_pushes_total", {"result": "rate_limited"}
        )
        assert limited is not None
        assert limited >= 1  # it was held back, and came back by itself
        await client.stop()
    await hub.stop()


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
