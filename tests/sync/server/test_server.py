"""The server over real WebSockets and HTTP: sync, tokens and roles, catch-up, health."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection, connect

from pjai.schema import MemoryUpdated
from pjai.schema.records import ROOT
from pjai.store import Store
from pjai.sync.client import SyncClient
from pjai.sync.protocol import (
    MAX_FRAME_BYTES,
    Error,
    Events,
    Hello,
    Message,
    Ping,
    Pull,
    Push,
    Welcome,
    decode,
    encode,
)
from pjai.sync.server import Hub, Limits, ServerConfig, SyncServer, TokenStore
from pjai.sync.websocket import websocket_connector
from tests.helpers import memory, persona
from tests.sync.records import records

pytestmark = pytest.mark.anyio


@contextlib.asynccontextmanager
async def opened(path: Path, config: ServerConfig) -> AsyncIterator[tuple[SyncServer, TokenStore]]:
    """A server on an SQLite file, not serving yet, and its tokens; closed after."""
    async with SyncServer.open(path, config) as server:
        assert server.database is not None
        yield server, server.database.tokens


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[Hub, TokenStore, str]]:
    async with opened(tmp_path / "sync.db", ServerConfig(poll_interval=0.1)) as (server, tokens):
        yield server.hub, tokens, await server.start()


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
            ("pjai_nope", "unknown, revoked or expired token"),
            (other, "for store 's2'"),
        ):
            client = SyncClient(a, websocket_connector(ws, secret), store_id="s1")
            async with asyncio.timeout(10):
                await client.run()  # ends: retrying cannot help
            assert client.status.state == "failed"
            assert message in (client.status.last_error or "")
        a.commit(persona("p2"))
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


async def test_a_pull_over_http_leaves_nothing_behind(server: tuple[Hub, TokenStore, str]) -> None:
    hub, tokens, url = server
    reader, _ = tokens.create("*", "read")
    auth = {"Authorization": f"Bearer {reader}"}
    async with httpx.AsyncClient(base_url=url, headers=auth) as http:
        for i in range(50):
            answer = await http.get("/pull", params={"store_id": f"nobody-watches-{i}"})
            assert answer.status_code == 200
        for path in ("/pull", "/keys"):
            long = await http.get(path, params={"store_id": "x" * 101})
            assert long.status_code == 400
            assert "store_id of 1 to 100 bytes" in long.json()["message"]
            assert (await http.get(path, params={"store_id": "a\x00b"})).status_code == 400
    assert hub.feeds == {}
    assert hub.log._recent == {}  # type: ignore[attr-defined]  # no store's events cached


# -- connections that misbehave or vanish -------------------------------------------

WAIT = 30  # seconds before a wait counts as a hang


async def test_a_connection_must_say_hello_first_and_soon(tmp_path: Path) -> None:
    async with opened(tmp_path / "sync.db", ServerConfig(hello_timeout=0.2)) as (server, _):
        await server.start()
        ws = server.sync_url
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


class Kept(logging.Handler):
    """Keeps the records it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.asynccontextmanager
async def serving_logged(server: SyncServer) -> AsyncIterator[tuple[str, list[logging.LogRecord]]]:
    """``server`` serving, with what is logged meanwhile: complete once the server has
    stopped, since uvicorn waits for its connections' tasks. uvicorn's loggers do not
    propagate to the root, so the handler goes on both."""
    kept = Kept()
    loggers = [logging.getLogger(), logging.getLogger("uvicorn")]
    try:
        url = await server.start()
        for logger in loggers:  # after uvicorn's logging config, which resets its handlers
            logger.addHandler(kept)
        yield url, kept.records
        await server.stop()
    finally:
        for logger in loggers:
            logger.removeHandler(kept)


MOMENTS = ("refused", "connected", "hello", "pull", "events", "push")
ENDINGS = ("fin", "reset", "close")


async def vanish(url: str, token: str, moment: str, ending: str) -> None:
    """Connect, go as far as ``moment``, then end the connection: ``fin`` and ``reset``
    drop the TCP connection without a close frame (an RST for ``reset``), as a killed
    process or a lost network does; ``close`` closes it properly."""
    ws = await connect(url, compression=None, max_size=MAX_FRAME_BYTES, proxy=None)
    stage = MOMENTS.index(moment)
    try:
        if moment == "refused":  # the server answers out_of_order and closes at once
            await send(ws, Pull(cursor=ROOT))
        if stage >= MOMENTS.index("hello"):
            await send(ws, Hello(versions=[1], store_id="s1", client_id="c1", token=token))
        if stage >= MOMENTS.index("pull"):
            assert isinstance(decode(await ws.recv()), Welcome)
            await send(ws, Pull(cursor=ROOT, live=True))
        if stage >= MOMENTS.index("events"):
            first = decode(await ws.recv())
            assert isinstance(first, Events)
            assert first.more  # the rest are on their way
        if stage >= MOMENTS.index("push"):
            await send(ws, Push(id=1, events=records(20)))
    finally:
        if ending == "close":
            await ws.close()
        else:
            if ending == "reset":
                sock = ws.transport.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            ws.transport.abort()


async def send(ws: ClientConnection, message: Message) -> None:
    await ws.send(encode(message).decode())


async def test_clients_that_vanish_or_leave_are_no_error_and_others_are_served(
    tmp_path: Path,
) -> None:
    # 72 connections of one token from one address at once: more than the default
    # places of either, which are not what this is about.
    config = ServerConfig(poll_interval=0.1, limits=Limits(per_address=100, per_token=100))
    async with opened(tmp_path / "sync.db", config) as (server, tokens):
        writer, _ = tokens.create("s1", "write")
        server.hub.log.append("s1", records(2500))  # a pull from the root takes three frames
        async with serving_logged(server) as (url, logged):
            ws = url.replace("http", "ws") + "/sync"
            with Store.memory(sync=True) as a, Store.memory(sync=True) as b:
                steady = SyncClient(a, websocket_connector(ws, writer), store_id="s1")
                steady.start()
                async with asyncio.timeout(WAIT):
                    await steady.wait_until(lambda s: s.state == "online" and s.lag == 0)
                    # Live pullers get the echoes of these while they vanish.
                    a.commit(persona("p2"), memory("m1", "p2"))
                    await asyncio.gather(
                        *(
                            vanish(ws, writer, moment, ending)
                            for moment, ending, _ in itertools.product(MOMENTS, ENDINGS, range(4))
                        )
                    )
                    (last,) = a.commit(memory("m2", "p2"))
                    assert await steady.synced(last.id) == "confirmed"
                    # A client that comes now is served as usual.
                    late = SyncClient(b, websocket_connector(ws, writer), store_id="s1")
                    late.start()
                    await late.wait_until(lambda s: s.confirmed_head == a.confirmed_head.global_seq)
                await steady.stop()
                await late.stop()
                assert b.state_hash() == a.state_hash()
        assert server.hub.connections == 0
    complaints = [
        f"{r.name} {r.levelname}: {r.getMessage()}"
        for r in logged
        if r.levelno >= logging.WARNING or r.exc_info
    ]
    assert complaints == []
