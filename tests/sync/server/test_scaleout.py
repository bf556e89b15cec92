"""Scale-out: two `pjai sync-server serve` processes share one PostgreSQL database.

Needs ``PJAI_TEST_POSTGRES_URL``; each test gets a schema of its own and a store id of
its own (notifications cross schemas).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from pjai.schema import MemoryUpdated
from pjai.sql.engine import create_sql_engine
from pjai.store import Store
from pjai.sync.client import SyncClient
from pjai.sync.server import ServerDatabase, SqlLog
from pjai.sync.server.log import Appended
from pjai.sync.websocket import websocket_connector
from tests.cli.test_syncserver_cli import ServerProcess, replay, server_processes
from tests.databases import postgres_schema
from tests.helpers import memory, persona
from tests.sync.records import records

pytestmark = pytest.mark.anyio


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


def client_of(server: ServerProcess, store: Store, store_id: str) -> SyncClient:
    connect = websocket_connector(server.sync_url, open_timeout=5)
    return SyncClient(store, connect, store_id=store_id, backoff=(0.05, 0.5))


async def converge(clients: list[SyncClient], url: str, store_id: str) -> int:
    """Wait until every client's events are settled and all are level with the log."""
    async with asyncio.timeout(20):
        for client in clients:
            await client.wait_until(lambda s: s.state == "online" and s.pending == 0)
        # Nothing is pending anywhere, so the log has its final head.
        with ServerDatabase.open(url) as database:
            head = database.log.head(store_id).global_seq
        for client in clients:
            await client.wait_until(lambda s: s.level and s.confirmed_head == head)
    return head


async def test_clients_of_two_servers_converge(postgres_url: str, tmp_path: Path) -> None:
    store_id = f"scaleout-{uuid.uuid4().hex[:8]}"
    args = ("--db", postgres_url, "--no-auth")
    async with server_processes(*args, logs=[tmp_path / "a.log", tmp_path / "b.log"]) as (a, b):
        assert a.backend_id == b.backend_id
        stores = [Store.memory(sync=True) for _ in range(6)]
        clients = [client_of((a, b)[i % 2], s, store_id) for i, s in enumerate(stores)]
        for client in clients:
            client.start()
        try:
            stores[0].commit(persona("p0"), memory("shared", "p0"))
            await converge(clients, postgres_url, store_id)
            for turn in range(3):  # every client writes, through either server, at once
                for i, store in enumerate(stores):
                    store.commit(
                        persona(f"p{i + 1}-{turn}"),
                        memory(f"m{i}-{turn}", f"p{i + 1}-{turn}"),
                        MemoryUpdated(memory_id="shared", persona_id="p0", importance=i / 10),
                    )
                await asyncio.sleep(0)  # let some pushes out before the next turn
            head = await converge(clients, postgres_url, store_id)
            logged, state = replay(postgres_url, store_id)
            assert len(logged) == len(set(logged)) == head == 2 + 3 * 6 * 3
            for store in stores:
                assert store.pending() == []
                assert store.state_hash() == state
            for server in (a, b):  # both processes took pushes
                async with httpx.AsyncClient(base_url=server.url) as http:
                    metrics = (await http.get("/metrics")).text
                appended = next(
                    line
                    for line in metrics.splitlines()
                    if line.startswith("pjai_sync_events_appended_total")
                )
                assert float(appended.split()[1]) > 0
        finally:
            for client in clients:
                await client.stop()
            for store in stores:
                store.close()
        assert await asyncio.gather(a.stop(), b.stop()) == [0, 0]


def muted_url(url: str) -> str:
    """``url`` with a ``pg_notify`` of its schema ahead of PostgreSQL's: notifies nobody.

    The server's wake-up for an append made through it is lost, as when a LISTEN
    connection is down, so only the servers' polling can find the append.
    """
    parsed = make_url(url)
    schema = str(parsed.query["options"]).removeprefix("-csearch_path=")
    engine = create_sql_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                f'CREATE FUNCTION "{schema}".pg_notify(channel text, payload text) '
                "RETURNS text LANGUAGE sql AS $$ SELECT 'muted' $$"
            )
        )
    engine.dispose()
    muted = parsed.update_query_dict({"options": f"-csearch_path={schema},pg_catalog"})
    return muted.render_as_string(hide_password=False)


async def test_polling_finds_appends_whose_notification_is_lost(
    postgres_url: str, tmp_path: Path
) -> None:
    store_id = f"polling-{uuid.uuid4().hex[:8]}"
    args = ("--db", postgres_url, "--no-auth", "--poll", "0.1")
    async with server_processes(*args, logs=[tmp_path / "a.log", tmp_path / "b.log"]) as (a, b):
        stores = [Store.memory(sync=True) for _ in range(2)]
        clients = [client_of(server, s, store_id) for server, s in zip((a, b), stores, strict=True)]
        for client in clients:
            client.start()
        writer = SqlLog(create_sql_engine(muted_url(postgres_url)))
        try:
            async with asyncio.timeout(10):
                for client in clients:
                    await client.wait_until(lambda s: s.level)
            with writer.engine.connect() as conn:  # the writer's notifications go nowhere
                muted = conn.scalar(text("SELECT pg_notify('pjai_sync', :s)"), {"s": store_id})
            assert muted == "muted"
            batch = records(4, "px")
            assert writer.append(store_id, batch) == Appended(batch[-1].position, 4)
            async with asyncio.timeout(10):
                for client in clients:
                    await client.wait_until(lambda s: s.level and s.confirmed_head == 4)
            stores[1].commit(memory("written-after", "px"))
            await converge(clients, postgres_url, store_id)
            logged, state = replay(postgres_url, store_id)
            assert logged[:4] == [r.id for r in batch]
            for store in stores:
                assert store.state_hash() == state
        finally:
            writer.engine.dispose()
            for client in clients:
                await client.stop()
            for store in stores:
                store.close()
        assert await asyncio.gather(a.stop(), b.stop()) == [0, 0]
