"""Syncing through the hybrid manager: SQL receives confirmed events only, once each."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pjai.errors import ConfigError
from pjai.hybrid import HybridDatabaseManager
from pjai.schema import EventRecord, MemoryDeleted, MemoryUpdated
from pjai.sql import journal
from pjai.sync.client import SyncClient
from pjai.sync.server.hub import Hub
from pjai.sync.server.log import MemoryLog
from tests.helpers import memory, persona

pytestmark = pytest.mark.anyio

SYNC = {"PJAI_FLAG_SYNC": "true"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    hub = Hub(MemoryLog(), None, poll_interval=0.05)
    await hub.start()
    yield hub
    await hub.stop()


def sql_journal(manager: HybridDatabaseManager) -> list[EventRecord]:
    (shard,) = manager.shards
    with shard.writer.connection("reading the journal") as conn:
        return [record for record, _status, _error in journal.journal_entries(conn)]


def open_synced(path: Path, sql_url: str) -> HybridDatabaseManager:
    return HybridDatabaseManager.open(path, sql_urls=[sql_url], environ=SYNC)


async def settle(hub: Hub, *pairs: tuple[SyncClient, HybridDatabaseManager]) -> None:
    """Wait until every client is level with the server's head, and its SQL with it."""
    async with asyncio.timeout(10):
        for client, _ in pairs:
            await client.wait_until(
                lambda s: s.level and s.confirmed_head == hub.log.head("s1").global_seq
            )
        # SQL follows a moment after: the bridge projects once the rebase has committed.
        while any(m.bridge.checkpoint() < m.head() for _, m in pairs):  # noqa: ASYNC110
            await asyncio.sleep(0.005)


async def test_sql_receives_confirmed_events_only_in_server_order(tmp_path: Path, hub: Hub) -> None:
    with (
        open_synced(tmp_path / "a", f"sqlite:///{tmp_path}/a.db") as a,
        open_synced(tmp_path / "b", f"sqlite:///{tmp_path}/b.db") as b,
    ):
        added = a.commit(persona("p1"), memory("m1"), memory("m2"))
        assert a.syncing
        assert a.store is not None
        assert a.store.status(added[0].id) == "pending"
        assert sql_journal(a) == []  # pending: not in SQL
        assert a.personas.get("p1") is None
        assert a.head() == 0

        ca = a.sync_client(hub.memory_connector(), store_id="s1")
        cb = b.sync_client(hub.memory_connector(), store_id="s1")
        ca.start()
        cb.start()
        await settle(hub, (ca, a), (cb, b))
        assert b.personas.get("p1") is not None
        assert [r.id for r in sql_journal(a)] == [r.id for r in added]
        assert sql_journal(b) == sql_journal(a)

        # Offline on both sides: a deletes m1, b updates it; b's update loses.
        await cb.stop()
        a.commit(MemoryDeleted(memory_id="m1", persona_id="p1"))
        (update,) = b.commit(MemoryUpdated(memory_id="m1", persona_id="p1", content="late"))
        await settle(hub, (ca, a))
        cb = b.sync_client(hub.memory_connector(), store_id="s1")
        cb.start()
        async with asyncio.timeout(10):
            assert await cb.synced(update.id) == "rejected"
        await settle(hub, (ca, a), (cb, b))

        server = [r.id for r in hub.log.read("s1", added[0].parent, 1_000)]
        assert [r.id for r in sql_journal(a)] == server
        assert [r.id for r in sql_journal(b)] == server  # the rejected update never reached SQL
        assert update.id not in server
        for manager in (a, b):
            assert manager.verify().equal
            assert manager.memories.get("m1") is not None
            assert manager.memories.get("m1").deleted_at is not None  # type: ignore[union-attr]
        await ca.stop()
        await cb.stop()


async def test_verify_waits_for_pending_events(tmp_path: Path) -> None:
    with open_synced(tmp_path / "a", f"sqlite:///{tmp_path}/a.db") as a:
        a.commit(persona("p1"))
        with pytest.raises(ConfigError, match="1 event\\(s\\) wait for the sync server"):
            a.verify()


def test_a_synced_directory_keeps_the_store_on(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/a.db"
    with pytest.raises(ConfigError, match="the sync flag needs the reactive store"):
        HybridDatabaseManager.open(
            tmp_path / "a", sql_urls=[url], environ={**SYNC, "PJAI_USE_LIVESTORE": "false"}
        )
    with open_synced(tmp_path / "a", url) as a:
        with pytest.raises(ConfigError, match="this data directory syncs"):
            a.set_flag("use_livestore", False)
        assert a.use_livestore
        a.commit(persona("p1"))  # still works after the refused switch


def test_the_store_mode_is_fixed_when_made(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/a.db"
    with HybridDatabaseManager.open(tmp_path / "a", sql_urls=[url], environ={}) as a:
        a.commit(persona("p1"))
        with pytest.raises(ConfigError, match="does not sync"):
            a.sync_client(lambda: None, store_id="s1")  # type: ignore[arg-type,return-value]
    with pytest.raises(ConfigError, match="was made standalone; a store's mode is fixed"):
        open_synced(tmp_path / "a", url)


def test_sql_with_another_history_is_not_synced_over(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/a.db"
    alone = {"PJAI_USE_LIVESTORE": "false"}
    with HybridDatabaseManager.open(tmp_path / "a", sql_urls=[url], environ=alone) as a:
        a.commit(persona("old"))  # SQL alone: no store file
    assert not (tmp_path / "a" / "store.db").exists()
    with pytest.raises(ConfigError, match="SQL's journal reaches e1 but this synced store"):
        open_synced(tmp_path / "a", url)


def test_a_directory_made_synced_by_the_environment_stays_synced(tmp_path: Path) -> None:
    # The store's mode is fixed when it is made: later commands need not repeat the
    # variable (they were refused: "the sync flag is off but ... was made to sync").
    with HybridDatabaseManager.open(tmp_path / "data", environ={"PJAI_FLAG_SYNC": "true"}):
        pass
    with HybridDatabaseManager.open(tmp_path / "data", environ={}) as manager:
        assert manager.syncing
        assert manager.flags.state("sync").source == "file"
    # An open that makes no store (refused: syncing needs the store) records nothing.
    refused = {"PJAI_FLAG_SYNC": "true", "PJAI_USE_LIVESTORE": "false"}
    with pytest.raises(ConfigError, match="the sync flag needs the reactive store"):
        HybridDatabaseManager.open(tmp_path / "other", environ=refused)
    assert not (tmp_path / "other" / "flags.json").exists()
