"""A revoked or expired token cuts off the open connections made with it, pulling or idle
ones too, over a real server: they get ``unauthorized`` instead of their next frame."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import pytest
import websockets
from websockets.asyncio.client import connect

from pjai.schema.records import ROOT
from pjai.schema.types import utc_now
from pjai.store import Store
from pjai.sync.client import SyncClient
from pjai.sync.protocol import Error, Events, Hello, Ping, Pong, Pull, Welcome, decode, encode
from pjai.sync.server import ServerConfig, SyncServer, TokenStore
from pjai.sync.websocket import websocket_connector
from tests.helpers import persona

pytestmark = pytest.mark.anyio

WAIT = 10  # seconds before a wait counts as a hang
REFUSED = "unauthorized: the token was revoked or expired"


@pytest.fixture
async def server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[TokenStore, str]]:
    """A server with tokens, and its ``/sync`` URL. Its connections look their token up
    before every frame in or out (no ``RECHECK_S`` to wait for)."""
    monkeypatch.setattr("pjai.sync.server.session.RECHECK_S", 0.0)
    async with SyncServer.open(tmp_path / "sync.db", ServerConfig(poll_interval=0.1)) as server:
        assert server.database is not None
        await server.start()
        yield server.database.tokens, server.sync_url


def cut_off(tokens: TokenStore, token_id: str, how: Literal["revoked", "expired"]) -> None:
    if how == "revoked":
        tokens.revoke(token_id)
    else:
        assert tokens.shorten(token_id, utc_now() - timedelta(seconds=1))


async def first_of(*waits: Coroutine[Any, Any, None]) -> None:
    """Wait until one of ``waits`` is done."""
    tasks = [asyncio.create_task(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@pytest.mark.parametrize("how", ["revoked", "expired"])
async def test_a_pulling_connection_gets_no_event_after_its_token_is_cut_off(
    server: tuple[TokenStore, str], how: Literal["revoked", "expired"]
) -> None:
    tokens, url = server
    writer, _ = tokens.create("s1", "write", "desk")
    kept, _ = tokens.create("s1", "read", "phone")
    stolen, laptop = tokens.create("s1", "read", "laptop")
    with Store.memory(sync=True) as a, Store.memory(sync=True) as b, Store.memory(sync=True) as c:
        desk = SyncClient(a, websocket_connector(url, writer), store_id="s1")
        phone = SyncClient(b, websocket_connector(url, kept), store_id="s1")
        thief = SyncClient(c, websocket_connector(url, stolen), store_id="s1")
        for client in (desk, phone, thief):
            client.start()
        a.commit(persona("p1"))
        async with asyncio.timeout(WAIT):
            await phone.wait_until(lambda s: s.confirmed_head == 1)
            await thief.wait_until(lambda s: s.confirmed_head == 1)
        cut_off(tokens, laptop.id, how)
        a.commit(persona("p2"))
        async with asyncio.timeout(WAIT):
            await phone.wait_until(lambda s: s.confirmed_head == 2)  # a live token: served
            await thief.wait_until(lambda s: s.state == "failed" or s.confirmed_head == 2)
        assert (thief.status.state, thief.status.last_error) == ("failed", REFUSED)
        assert thief.status.confirmed_head == 1
        assert [e.record.id for e in c.events()] == [e.record.id for e in a.events()][:1]
        a.commit(persona("p3"))  # the phone goes on; the thief stays out
        async with asyncio.timeout(WAIT):
            await phone.wait_until(lambda s: s.confirmed_head == 3)
        assert thief.status.confirmed_head == 1
        assert phone.status.state == "online"
        for client in (desk, phone, thief):
            await client.stop()


async def test_a_cut_off_connection_hears_no_more_presence_and_leaves_the_roster(
    server: tuple[TokenStore, str],
) -> None:
    tokens, url = server
    writer, _ = tokens.create("s1", "write", "desk")
    stolen, laptop = tokens.create("s1", "read", "laptop")
    with Store.memory(sync=True) as a, Store.memory(sync=True) as c:
        desk = SyncClient(a, websocket_connector(url, writer), store_id="s1", presence_name="desk")
        thief = SyncClient(
            c, websocket_connector(url, stolen), store_id="s1", presence_name="laptop"
        )
        desk.start()
        thief.start()
        async with asyncio.timeout(WAIT):
            await desk.presence.wait(lambda peers: [p.name for p in peers] == ["laptop"])
            await thief.presence.wait(lambda peers: [p.name for p in peers] == ["desk"])
        tokens.revoke(laptop.id)
        desk.presence.announce(state="away")  # fanned out to the thief's connection too
        async with asyncio.timeout(WAIT):
            await first_of(
                thief.wait_until(lambda s: s.state == "failed"),
                thief.presence.wait(lambda peers: [p.state for p in peers] == ["away"]),
            )
            assert (thief.status.state, thief.status.last_error) == ("failed", REFUSED)
            await desk.presence.wait(lambda peers: peers == [])  # the laptop is gone
        assert desk.status.state == "online"
        await desk.stop()
        await thief.stop()


async def test_an_idle_connection_is_cut_off_at_its_next_frame(
    server: tuple[TokenStore, str],
) -> None:
    tokens, url = server
    stolen, laptop = tokens.create("s1", "read", "laptop")
    async with connect(url, proxy=None) as ws:
        hello = Hello(versions=[1], store_id="s1", client_id="c1", token=stolen)
        await ws.send(encode(hello).decode())
        await ws.send(encode(Pull(cursor=ROOT, live=True)).decode())
        async with asyncio.timeout(WAIT):
            assert isinstance(decode(await ws.recv()), Welcome)
            assert isinstance(decode(await ws.recv()), Events)  # up to date, and idle
            await ws.send(encode(Ping(nonce=1)).decode())
            assert decode(await ws.recv()) == Pong(nonce=1)
            tokens.revoke(laptop.id)
            await ws.send(encode(Ping(nonce=2)).decode())  # the client's keepalive
            assert decode(await ws.recv()) == Error(
                code="unauthorized", message="the token was revoked or expired"
            )
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
