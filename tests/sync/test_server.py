"""The server over real WebSockets and HTTP: sync, tokens and roles, catch-up, health."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.asyncio.client import connect

from pjai.schema import MemoryUpdated
from pjai.store import Store
from pjai.sync.client import SyncClient
from pjai.sync.hub import Hub
from pjai.sync.protocol import Error, Ping, decode, encode
from pjai.sync.server import ServerConfig, open_server
from pjai.sync.tokens import TokenStore
from pjai.sync.websocket import websocket_connector
from tests.helpers import memory, persona
from tests.sync.servers import serving

pytestmark = pytest.mark.anyio


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[Hub, TokenStore, str]]:
    hub, tokens = open_server(ServerConfig(f"sqlite:///{tmp_path / 'sync.db'}", poll_interval=0.1))
    async with serving(hub, tokens) as url:
        yield hub, tokens, url
    hub.log.dispose()  # type: ignore[attr-defined]


async def test_two_clients_over_websockets(server: tuple[Hub, TokenStore, str]) -> None:
    hub, tokens, url = server
    writer, _ = tokens.create("s1", "write")
    ws = url.replace("http", "ws") + "/sync"
    with Store.memory(sync=True) as a, Store.memory(sync=True) as b:
        ca = SyncClient(a, websocket_connector(ws, writer), store_id="s1")
        cb = SyncClient(b, websocket_connector(ws, writer), store_id="s1")
        ca.start()
        cb.start()
        records = a.commit(persona("p1"), memory("m1"))
        async with asyncio.timeout(10):
            assert await ca.synced(records[-1].id) == "confirmed"
            await cb.wait_until(lambda s: s.confirmed_head >= 2)
        b.commit(MemoryUpdated(memory_id="m1", persona_id="p1", importance=0.9))
        async with asyncio.timeout(10):
            await ca.wait_until(lambda s: s.confirmed_head >= 3)
            await cb.wait_until(lambda s: s.level)
        assert a.state_hash() == b.state_hash()
        assert ca.status.backend_id == hub.log.backend_id
        await ca.stop()
        await cb.stop()


async def test_tokens_and_roles(server: tuple[Hub, TokenStore, str]) -> None:
    _, tokens, url = server
    reader, _ = tokens.create("s1", "read")
    other, _ = tokens.create("s2", "write")
    _, revoked = tokens.create("s1", "write")
    tokens.revoke(revoked.id)
    ws = url.replace("http", "ws") + "/sync"
    with Store.memory(sync=True) as a:
        for secret, message in (
            ("pjai_nope", "unknown or revoked token"),
            (other, "for store 's2'"),
        ):
            client = SyncClient(a, websocket_connector(ws, secret), store_id="s1")
            async with asyncio.timeout(10):
                await client.run()  # ends: retrying cannot help
            assert client.status.state == "failed"
            assert message in (client.status.last_error or "")
        a.commit(persona("p1"))
        client = SyncClient(a, websocket_connector(ws, reader), store_id="s1")
        client.start()
        async with asyncio.timeout(10):
            await client.wait_until(lambda s: s.state == "online" and s.lag == 0)
        assert client.status.read_only
        assert client.status.pending == 1
        await client.stop()


async def test_http_catch_up_health_and_metrics(server: tuple[Hub, TokenStore, str]) -> None:
    _, tokens, url = server
    writer, _ = tokens.create("s1", "write")
    admin, _ = tokens.create("*", "admin")
    ws = url.replace("http", "ws") + "/sync"
    with Store.memory(sync=True) as a:
        client = SyncClient(a, websocket_connector(ws, writer), store_id="s1")
        client.start()
        a.commit(persona("p1"), memory("m1"), memory("m2"))
        async with asyncio.timeout(10):
            await client.wait_until(lambda s: s.level)
        await client.stop()
    async with httpx.AsyncClient(base_url=url) as http:
        auth = {"Authorization": f"Bearer {writer}"}
        page = await http.get(
            "/pull", params={"store_id": "s1", "after": 1, "limit": 1}, headers=auth
        )
        assert page.status_code == 200
        body = page.json()
        assert body["type"] == "events"
        assert [e["position"][0] for e in body["events"]] == [2]
        assert (body["head"][0], body["more"]) == (3, True)
        assert (await http.get("/pull", params={"store_id": "s1"})).status_code == 401
        other = await http.get("/pull", params={"store_id": "s9"}, headers=auth)
        assert other.status_code == 403
        health = (await http.get("/health")).json()
        assert health["status"] == "ok"
        assert (await http.get("/metrics", headers=auth)).status_code == 403
        metrics = await http.get("/metrics", headers={"Authorization": f"Bearer {admin}"})
        assert "pjai_sync_events_appended_total 3.0" in metrics.text


# -- connections that misbehave or vanish -------------------------------------------

WAIT = 30  # seconds before a wait counts as a hang


async def test_a_connection_must_say_hello_first_and_soon(tmp_path: Path) -> None:
    hub, tokens = open_server(ServerConfig(f"sqlite:///{tmp_path / 'sync.db'}", hello_timeout=0.2))
    async with serving(hub, tokens) as url:
        ws = url.replace("http", "ws") + "/sync"
        async with connect(ws, proxy=None) as silent, connect(ws, proxy=None) as pinging:
            await pinging.send(encode(Ping(nonce=1)).decode())
            async with asyncio.timeout(WAIT):
                answer = decode(await pinging.recv())
                assert answer == Error(code="out_of_order", message="ping before hello")
                with pytest.raises(websockets.ConnectionClosed):
                    await pinging.recv()
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await silent.recv()
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
            1008,
            "no_hello: a hello must come first, and soon",
        )
    hub.log.dispose()  # type: ignore[attr-defined]
