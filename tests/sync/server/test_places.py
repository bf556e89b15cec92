"""How many connections a server process holds: in all, per address before hello, per
token after it; and how fast a token or an address opens them. A peer that opens
connections without end takes only its own places, at its own rate."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import anyio
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from pjai.sync.protocol import Error, Hello, Welcome, decode, encode
from pjai.sync.server import SERVER_FILE, Limits, ServerConfig, SyncServer
from pjai.sync.server.asgi import create_app
from pjai.sync.server.hub import Hub
from pjai.sync.server.log import MemoryLog
from pjai.sync.server.places import MAX_TOTAL, Places, TooSoon, address_key, default_total
from pjai.sync.server.tokens import Token
from pjai.sync.transport import ConnectionClosed as Closed
from pjai.sync.transport import memory_pipe
from pjai.sync.websocket import websocket_connector
from tests.sync.server.test_server import serving_logged

pytestmark = pytest.mark.anyio

WAIT = 10  # seconds before a wait counts as a hang
TOKENS = {
    "pjai_a": Token("ta", "s1", "write", "", "", None),
    "pjai_b": Token("tb", "s1", "write", "", "", None),
}


class Line:
    """One connection to a hub, as a client sees it."""

    def __init__(self, hub: Hub, address: str) -> None:
        self.client, server = memory_pipe()
        # serve takes its place, or is refused, in its first step: before this returns.
        self.served = asyncio.create_task(hub.serve(server, address=address))
        self.server = server

    @classmethod
    async def open(cls, hub: Hub, address: str) -> Line:
        line = cls(hub, address)
        await asyncio.sleep(0)  # one step of the loop: serve's first
        return line

    async def hello(self, token: str = "") -> Welcome | Error:
        hello = Hello(versions=[1], store_id="s1", client_id="c1", token=token)
        await self.client.send(encode(hello))
        with anyio.fail_after(WAIT):
            answer = decode(await self.client.receive())
        assert isinstance(answer, Welcome | Error)
        return answer

    async def refused(self) -> str:
        """The reason the server closed the connection with, once it is over."""
        with anyio.fail_after(WAIT):
            await self.served
        assert self.server.closed
        return self.server.close_reason

    async def leave(self) -> None:
        await self.client.close()
        with anyio.fail_after(WAIT):
            await self.served


async def settled(hub: Hub, total: int) -> None:
    """Wait until a served hub holds ``total`` places: uvicorn serves each connection
    in a task of its own, which takes its place a moment after the handshake."""
    with anyio.fail_after(WAIT):
        while hub.places.total != total:  # noqa: ASYNC110  # no event says it
            await asyncio.sleep(0.005)


def refusals(hub: Hub) -> float | None:
    return hub.metrics.registry.get_sample_value(
        "pjai_sync_connections_closed_total", {"reason": "too_many_connections"}
    )


async def test_connections_that_say_no_hello_hold_only_their_addresses_places() -> None:
    hub = Hub(MemoryLog(), None, limits=Limits(per_address=2), hello_timeout=WAIT)
    silent = [await Line.open(hub, "10.0.0.1"), await Line.open(hub, "10.0.0.1")]
    third = await Line.open(hub, "10.0.0.1")
    assert "have not said hello" in await third.refused()
    assert refusals(hub) == 1.0
    other = await Line.open(hub, "10.0.0.2")  # another address is let in
    assert isinstance(await other.hello(), Welcome)
    # One that says hello gives its address place back: the address may open another.
    assert isinstance(await silent[0].hello(), Welcome)
    again = await Line.open(hub, "10.0.0.1")
    assert isinstance(await again.hello(), Welcome)
    for line in (*silent, other, again):
        await line.leave()
    assert hub.places.total == 0
    await hub.stop()


async def test_a_token_holds_at_most_its_connections_and_gets_them_back() -> None:
    hub = Hub(MemoryLog(), TOKENS.get, limits=Limits(per_token=2))
    first, second, third = [await Line.open(hub, f"10.0.0.{n}") for n in range(3)]
    assert isinstance(await first.hello("pjai_a"), Welcome)
    assert isinstance(await second.hello("pjai_a"), Welcome)
    crowded = await third.hello("pjai_a")
    assert isinstance(crowded, Error)
    assert crowded.code == "too_many_connections"
    assert "this token holds 2 connections" in crowded.message
    await third.refused()
    other = await Line.open(hub, "10.0.0.4")
    assert isinstance(await other.hello("pjai_b"), Welcome)  # another token: its own places
    await first.leave()
    again = await Line.open(hub, "10.0.0.5")
    assert isinstance(await again.hello("pjai_a"), Welcome)
    await hub.stop()
    await asyncio.gather(second.served, other.served, again.served)
    assert hub.places.total == 0


async def test_the_process_holds_at_most_its_total() -> None:
    hub = Hub(MemoryLog(), None, limits=Limits(total=2))
    lines = [await Line.open(hub, f"10.0.0.{n}") for n in range(2)]
    for line in lines:
        assert isinstance(await line.hello(), Welcome)
    crowding = await Line.open(hub, "10.0.0.9")
    assert "holds 2 connections, its most" in await crowding.refused()
    await lines[0].leave()
    again = await Line.open(hub, "10.0.0.9")
    assert isinstance(await again.hello(), Welcome)
    await hub.stop()
    await asyncio.gather(lines[1].served, again.served)
    assert hub.places.total == 0


def test_places_are_counted_under_one_lock_and_given_back() -> None:
    places = Places(Limits(total=3, per_address=2, per_token=1))
    assert places.enter("a") is None
    assert places.enter("a") is None
    assert places.enter("a") is not None  # the address's places are taken
    assert places.enter("b") is None
    assert places.enter("c") is not None  # the total is taken
    places.greeted("a")  # the first says hello with token t
    assert places.claim("t") is None
    assert places.claim("t") is not None  # the token's place is taken
    places.leave(address=None, token_id="t")
    places.leave(address="a", token_id=None)  # the second leaves without a hello
    places.leave(address="b", token_id=None)
    assert places.total == 0
    assert places.enter("a") is None  # every place is back
    assert places.enter("a") is None
    assert places.claim("t") is None


def test_the_default_total_keeps_file_descriptors_for_the_rest() -> None:
    assert 16 <= default_total() <= MAX_TOTAL
    with pytest.raises(ValueError, match="per_token must be at least 1"):
        Limits(per_token=0)


async def test_a_served_process_refuses_a_crowding_address(tmp_path: Path) -> None:
    # Over real WebSockets: the peer's address is the one uvicorn saw.
    config = ServerConfig(require_tokens=False, limits=Limits(per_address=2))
    async with SyncServer.open(tmp_path / SERVER_FILE, config) as server:
        await server.start()
        with anyio.fail_after(WAIT):
            held = [await connect(server.sync_url) for _ in range(2)]
            await settled(server.hub, 2)
            crowding = await connect(server.sync_url)
            with pytest.raises(ConnectionClosed) as closed:
                await crowding.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1013
            assert closed.value.rcvd.reason.startswith("too_many_connections")
            for ws in held:
                await ws.close()
        await settled(server.hub, 0)


async def opening(url: str, address: str, token: str = "") -> ClientConnection:
    """A WebSocket connection from the loopback ``address`` with ``token`` in its header."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return await connect(url, additional_headers=headers, local_addr=(address, 0))


async def said_hello(ws: ClientConnection, token: str = "") -> Welcome | Error:
    hello = Hello(versions=[1], store_id="s1", client_id="c1", token=token)
    await ws.send(encode(hello).decode())
    answer = decode(await ws.recv())
    assert isinstance(answer, Welcome | Error)
    return answer


async def refused_opening(url: str, address: str, token: str = "") -> dict[str, object]:
    """The body of the 429 the server answers the handshake with; checks its header."""
    with pytest.raises(InvalidStatus) as refused:
        await opening(url, address, token)
    response = refused.value.response
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    body = json.loads(response.body or b"")
    assert body["error"] == "rate_limited"
    assert body["retry_after"] > 0
    return dict(body)


async def test_connections_open_at_the_rate_of_their_token_and_address(tmp_path: Path) -> None:
    """Each opening costs a handshake and a token check, however soon it closes: past
    the rate of its address or its token it is refused before either, politely."""
    config = ServerConfig(connection_rate=0.1)  # bursts of one opening, then one every 10 s
    async with SyncServer.open(tmp_path / SERVER_FILE, config) as server:
        assert server.database is not None
        first, _ = server.database.tokens.create("s1", "write")
        second, _ = server.database.tokens.create("s1", "write")
        async with serving_logged(server) as (_, logged):
            url = server.sync_url
            with anyio.fail_after(WAIT):
                ws = await opening(url, "127.0.0.1", first)
                assert isinstance(await said_hello(ws), Welcome)
                await ws.close()
                busy_address = await refused_opening(url, "127.0.0.1", second)
                assert "from this address" in str(busy_address["message"])
                # PJai's own client takes the wait the refusal asks for.
                with pytest.raises(Closed) as told:
                    await websocket_connector(url, second)()
                assert 0 < (told.value.retry_after or 0) <= 10
                busy_token = await refused_opening(url, "127.0.0.2", first)
                assert "with this token" in str(busy_token["message"])
                ws = await opening(url, "127.0.0.3", second)  # its own token, address: served
                assert isinstance(await said_hello(ws), Welcome)
                await ws.close()
                # A token given in the hello is counted there, before it is looked up.
                ws = await opening(url, "127.0.0.4")
                answer = await said_hello(ws, first)
                assert isinstance(answer, Error)
                assert answer.code == "rate_limited"
                assert "with this token" in answer.message
                assert 0 < (answer.retry_after or 0) <= 10
                await ws.close()
            await settled(server.hub, 0)
        refused = server.hub.metrics.registry.get_sample_value(
            "pjai_sync_connections_closed_total", {"reason": "rate_limited"}
        )
        assert refused == 4.0
    assert [r.getMessage() for r in logged if r.levelno >= logging.WARNING] == []


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2::7", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("memory", "memory"),
    ],
)
def test_an_ipv6_address_counts_as_its_64_network(host: str, key: str) -> None:
    # One host commonly holds a /64 whole: an address per connection must not escape.
    assert address_key(host) == key


async def test_the_sync_route_counts_an_ipv6_peer_by_its_network(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hub = Hub(MemoryLog(), None)
    counted: list[str] = []

    def opening(address: str, secret: str = "") -> TooSoon:
        counted.append(address)
        return TooSoon("from this address", 1.0)  # refused: the route ends there

    monkeypatch.setattr(hub, "opening", opening)
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, object]:
        return {"type": "websocket.connect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    for host in ("2001:db8::1", "2001:db8::2"):
        scope = {
            "type": "websocket",
            "path": "/sync",
            "raw_path": b"/sync",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"127.0.0.1:8765")],
            "client": (host, 50000),
            "server": ("127.0.0.1", 8765),
            "scheme": "ws",
            "subprotocols": [],
        }
        await create_app(hub)(scope, receive, send)
    assert counted == ["2001:db8::/64", "2001:db8::/64"]
    assert [m["type"] for m in sent] == ["websocket.close", "websocket.close"]
