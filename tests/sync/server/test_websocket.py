"""The server's WebSocket end over a real uvicorn server: clients that stop reading."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import select
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed as WebSocketClosed
from websockets.http11 import Response
from websockets.uri import parse_uri

from pjai.bench.processes import resident_kb
from pjai.errors import ConfigError
from pjai.schema.records import ROOT
from pjai.sql.engine import sqlite_url
from pjai.store import Store
from pjai.sync.client import SyncClient
from pjai.sync.protocol import (
    MAX_FRAME_BYTES,
    MAX_HELLO_BYTES,
    Hello,
    Ping,
    Pong,
    Pull,
    Welcome,
    decode,
    encode,
)
from pjai.sync.server import SyncServer
from pjai.sync.server.hub import Hub
from pjai.sync.server.log import MemoryLog
from pjai.sync.server.sockets import FLOODED_BYTES
from pjai.sync.transport import ConnectionClosed, Transport
from pjai.sync.websocket import websocket_connector
from tests.cli.test_syncserver_cli import server_process
from tests.helpers import memory, persona
from tests.sync.servers import serving

pytestmark = pytest.mark.anyio

WAIT = 30  # seconds before a wait counts as a hang
BATCHES = 40  # megabytes the writer commits: ten times what the buffers on the way hold


class Watched(Hub):
    """A hub on a memory log, without tokens, that says when each connection ends."""

    def __init__(self, **options: float) -> None:
        super().__init__(MemoryLog(), None, **options)
        self.ended: asyncio.Queue[None] = asyncio.Queue()

    async def serve(
        self, transport: Transport, *, header_token: str = "", address: str = ""
    ) -> None:
        try:
            await super().serve(transport, header_token=header_token, address=address)
        finally:
            self.ended.put_nowait(None)


def raw_socket() -> socket.socket:
    """A TCP socket with a small receive buffer, which fills soon when not read."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    return sock


async def handshake(sock: socket.socket, url: str) -> ClientProtocol:
    """Open the WebSocket at ``url`` on ``sock``; its client end, without I/O."""
    loop = asyncio.get_running_loop()
    uri = parse_uri(url)
    await loop.sock_connect(sock, (uri.host, uri.port))
    ws = ClientProtocol(uri)
    ws.send_request(ws.connect())
    await loop.sock_sendall(sock, b"".join(ws.data_to_send()))
    while not any(isinstance(event, Response) for event in ws.events_received()):
        data = await loop.sock_recv(sock, 4096)
        assert data, "the server closed the connection during the handshake"
        ws.receive_data(data)
    return ws


async def stop_reading(sock: socket.socket, url: str) -> None:
    """Open the WebSocket on ``sock``, say hello and pull store s1 live from the root;
    then read nothing more."""
    loop = asyncio.get_running_loop()
    ws = await handshake(sock, url)
    ws.send_text(encode(Hello(versions=[1], store_id="s1", client_id="stuck")))
    ws.send_text(encode(Pull(cursor=ROOT, live=True)))
    await loop.sock_sendall(sock, b"".join(ws.data_to_send()))


def hung_up(sock: socket.socket, timeout: float) -> int:
    """Wait, without reading, until the peer ends ``sock`` (a reset, or a FIN after the
    data); the poll events, or 0 if the connection is still up after ``timeout`` s."""
    poller = select.poll()
    poller.register(sock, select.POLLRDHUP)  # POLLHUP and POLLERR come anyway
    ready = poller.poll(timeout * 1000)
    return ready[0][1] if ready else 0


@contextlib.asynccontextmanager
async def writer(url: str) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """A sync client of store s1; yields a function that commits a megabyte of memories
    and waits until the server has confirmed them."""
    content = "x" * 20_000
    numbers = itertools.count()
    with Store.memory(sync=True) as store:
        client = SyncClient(store, websocket_connector(url), store_id="s1")
        client.start()

        async def commit() -> None:
            number = next(numbers)
            events = (memory(f"m{number}-{i}", content=content) for i in range(50))
            *_, last = store.commit(*events)
            assert await client.synced(last.id) == "confirmed"

        store.commit(persona())
        try:
            yield commit
        finally:
            await client.stop()


@pytest.mark.parametrize("gives_up", ["send_timeout", "keepalive"])
async def test_a_client_that_stops_reading_is_let_go_and_others_are_served(
    gives_up: str,
) -> None:
    """The hub gives up on a send after ``send_timeout``, or uvicorn on its unanswered
    ping; either way the close that follows cannot be written, and must not wait for
    the client for ever."""
    if gives_up == "send_timeout":
        hub, ping_interval = Watched(send_timeout=0.3, close_timeout=0.3), 20.0
    else:  # its pongs, which it does not read, come within 5 s for the writer
        hub, ping_interval = Watched(send_timeout=3600, close_timeout=0.3), 0.3
    async with (
        serving(hub, ping_interval=ping_interval, ping_timeout=5) as url,
        writer(url.replace("http", "ws") + "/sync") as commit,
    ):
        stuck = raw_socket()
        try:
            await stop_reading(stuck, url.replace("http", "ws") + "/sync")
            confirmed = 0

            async def fill() -> None:  # the live events fill the buffers to the client
                nonlocal confirmed
                for _ in range(BATCHES):
                    await commit()
                    confirmed += 1

            filling = asyncio.create_task(fill())
            try:
                events = await asyncio.to_thread(hung_up, stuck, WAIT)
                assert events, "the server keeps the connection of a client that does not read"
                async with asyncio.timeout(WAIT):
                    await hub.ended.get()  # the stuck connection's: the writer's is open
            finally:
                filling.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await filling
        finally:
            stuck.close()  # lets the server go even when it would not let go itself
        assert hub.connections == 1
        assert hub.metrics.registry.get_sample_value("pjai_sync_connections") == 1.0
        # The writer was served meanwhile, and still is.
        assert confirmed > 0
        async with asyncio.timeout(WAIT):
            await commit()
    if gives_up == "send_timeout":
        closed = hub.metrics.registry.get_sample_value(
            "pjai_sync_connections_closed_total", {"reason": "slow_consumer"}
        )
        assert closed == 1.0


async def test_the_server_stops_while_a_client_that_stops_reading_is_connected() -> None:
    hub = Watched(send_timeout=3600, close_timeout=0.3)
    stuck = raw_socket()
    try:
        async with asyncio.timeout(WAIT):
            async with serving(hub) as url:
                ws_url = url.replace("http", "ws") + "/sync"
                await stop_reading(stuck, ws_url)
                async with writer(ws_url) as commit:
                    for _ in range(BATCHES):  # far more than the stuck client can take
                        await commit()
            # The server has stopped: it did not wait for the stuck client to read.
        assert hub.connections == 0
        assert hung_up(stuck, 0)
    finally:
        stuck.close()


async def test_a_client_that_pings_without_reading_cannot_fill_the_server_s_memory() -> None:
    """Each WebSocket ping the server reads queues a pong to send: a client that sends
    pings and reads nothing would make the server keep every pong, before its hello
    too. Past what the server itself ever queues, the connection reads no more."""
    hub = Watched(close_timeout=0.3)
    flood = 64 * 1024 * 1024  # far more than the server may queue for one connection
    async with SyncServer(hub) as server:
        url = (await server.start()).replace("http", "ws") + "/sync"
        sock = raw_socket()
        try:
            ws = await handshake(sock, url)
            (connection,) = server._uvicorn.server_state.connections  # type: ignore[union-attr]
            for _ in range(500):
                ws.send_ping(b"x" * 125)  # the largest a ping may carry
            pings = b"".join(ws.data_to_send())
            sock.setblocking(True)

            def send() -> None:
                with contextlib.suppress(OSError):  # the socket is closed under it
                    for _ in range(flood // len(pings)):
                        sock.sendall(pings)

            sending = asyncio.create_task(asyncio.to_thread(send))
            transport = connection.transport
            async with asyncio.timeout(WAIT):
                while transport.is_reading() and not sending.done():  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            queued = transport.get_write_buffer_size()
            assert queued <= FLOODED_BYTES + 1024 * 1024, f"{queued:,} bytes queued"
            assert not sending.done(), "the server took every ping"
        finally:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the sender, where close() would not
            sock.close()
        await sending
        async with asyncio.timeout(WAIT):
            await hub.ended.get()
        assert hub.connections == 0


async def test_an_idle_connection_keeps_nothing_of_its_last_frame(tmp_path: Path) -> None:
    """Connections idle after a frame of 8 MiB cost the server much less than a frame
    each (it kept two copies of each one's last frame: the WebSocket parser's and the
    hub's). Measured as the resident memory of a server process."""
    idle = 16

    async def idle_after_a_large_frame(url: str, number: int) -> Transport:
        transport = await websocket_connector(url)()
        await transport.send(encode(Hello(versions=[1], store_id=f"s{number}", client_id="c")))
        assert isinstance(decode(await transport.receive()), Welcome)
        ping = encode(Ping(nonce=number))  # padded with JSON whitespace
        await transport.send(ping[:-1] + b" " * (MAX_FRAME_BYTES - len(ping)) + b"}")
        assert decode(await transport.receive()) == Pong(nonce=number)
        return transport

    database = sqlite_url(tmp_path / "sync.db")
    async with server_process("--no-auth", "--db", database, log=tmp_path / "server.log") as server:
        pid = server.process.pid
        transports = [await idle_after_a_large_frame(server.sync_url, 0)]  # first allocations
        try:
            before = resident_kb(pid, "this test")
            for number in range(1, idle + 1):
                transports.append(await idle_after_a_large_frame(server.sync_url, number))
            grown = resident_kb(pid, "this test") - before
        finally:
            for transport in transports:
                await transport.close()
    assert grown * 1024 < idle * MAX_FRAME_BYTES // 4, f"{grown:,} KiB for {idle} idle connections"


def test_an_address_that_is_not_a_websocket_url_is_refused_at_once() -> None:
    with pytest.raises(ConfigError, match="'ws://:8765/sync' is not a sync server's address"):
        websocket_connector("ws://:8765/sync")


async def test_a_failed_connection_says_why_in_words() -> None:
    with socket.socket() as probe:  # a port nothing listens on once it is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectionClosed) as refused:
        await websocket_connector(f"ws://127.0.0.1:{port}/sync", open_timeout=5)()
    said = str(refused.value)
    assert said == (
        f"cannot connect to ws://127.0.0.1:{port}/sync: nothing listens there (connection refused)"
    )


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1:9/login",  # a captive portal's page
        "ws://127.0.0.1:99999/sync",  # a port no connection can have
        "ws://elsewhere.example/sync",  # another server, which would get the token
    ],
)
async def test_a_redirect_is_a_refusal_the_client_retries(location: str) -> None:
    asked: list[bytes] = []

    async def redirect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError):  # a client stopped meanwhile
            asked.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(
            f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode()
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(redirect, "127.0.0.1", 0)
    url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/sync"
    async with server:
        with pytest.raises(ConnectionClosed) as refused:
            await websocket_connector(url, open_timeout=5)()
        assert str(refused.value).endswith(
            f"302: it redirects to {location}, which a sync server does not do"
        )
        with Store.memory(sync=True) as store:
            store.commit(persona())
            client = SyncClient(
                store, websocket_connector(url), store_id="s1", backoff=(0.01, 0.02)
            )
            client.start()
            async with asyncio.timeout(WAIT):
                await client.wait_until(lambda status: status.reconnects >= 3)
            status = client.status
            await client.stop()
    assert status.state in ("offline", "connecting")
    assert status.pending == 1
    assert "redirects to" in (status.last_error or "")
    assert len(asked) >= 4  # the client kept asking the same server, and no other


async def too_big(ws: ClientConnection, message: str | list[str] | None = None) -> None:
    """Send ``message`` (by default one byte over a frame), then wait for what comes."""
    async with asyncio.timeout(WAIT):
        await ws.send("x" * (MAX_FRAME_BYTES + 1) if message is None else message)
        await ws.recv()


async def test_the_server_negotiates_no_compression_and_reads_no_message_over_a_frame() -> None:
    # Compressed, a few kilobytes would unpack into a frame's worth before any check.
    async with serving(Hub(MemoryLog(), None)) as url:
        sync_url = "ws" + url.removeprefix("http") + "/sync"
        async with connect(sync_url, compression="deflate", max_size=None) as ws:
            assert ws.response is not None
            assert ws.response.headers.get("Sec-WebSocket-Extensions") is None
            with pytest.raises(WebSocketClosed) as closed:  # as it is sent, or after
                await too_big(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009  # too big: not read


@pytest.mark.parametrize(
    "first",
    [
        "x" * (MAX_HELLO_BYTES + 1),  # one frame: refused by its header
        ["x" * 40_000, "y" * 40_000],  # fragments: refused once they pass the bound
    ],
)
async def test_a_first_message_over_a_hello_s_bound_is_not_read(first: str | list[str]) -> None:
    async with serving(Hub(MemoryLog(), None)) as url:
        sync_url = "ws" + url.removeprefix("http") + "/sync"
        async with connect(sync_url, compression=None, max_size=None) as ws:
            with pytest.raises(WebSocketClosed) as closed:
                await too_big(ws, first)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009  # too big: not read


async def test_after_the_hello_a_message_may_be_a_frame_s_size() -> None:
    async with serving(Hub(MemoryLog(), None)) as url:
        sync_url = "ws" + url.removeprefix("http") + "/sync"
        async with connect(sync_url, compression=None) as ws:
            await ws.send(encode(Hello(versions=[1], store_id="s1", client_id="c1")))
            async with asyncio.timeout(WAIT):
                assert isinstance(decode(await ws.recv()), Welcome)
                ping = encode(Ping(nonce=7))
                await ws.send(ping[:-1] + b" " * (4 * 1024 * 1024) + b"}")  # 4 MiB
                assert decode(await ws.recv()) == Pong(nonce=7)
