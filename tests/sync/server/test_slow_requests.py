"""Slow requests over a real uvicorn server: a connection that sends no head, sends one a
byte at a time, or sends header lines without end is closed, and frees its place; a
WebSocket, once upgraded, is not timed as a head; a body sent a byte at a time is
refused (408) and its connection ended."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request
from websockets.asyncio.client import connect

from pjai.errors import ConfigError
from pjai.sync.protocol import Hello, Welcome, decode, encode
from pjai.sync.server import Limits, ServerConfig, SyncServer, asgi
from pjai.sync.server.sockets import MAX_HEAD_BYTES
from tests.sync.server.test_websocket import hung_up

pytestmark = pytest.mark.anyio

WAIT = 30  # seconds before a wait counts as a hang
HEAD_S = 0.5  # the servers' head_timeout here


@contextlib.asynccontextmanager
async def serving(
    tmp_path: Path, limits: Limits | None = None
) -> AsyncIterator[tuple[SyncServer, str]]:
    """A server without tokens whose connections have ``HEAD_S`` to send a head."""
    settings = ServerConfig(require_tokens=False, head_timeout=HEAD_S, limits=limits or Limits())
    async with SyncServer.open(tmp_path / "sync.db", settings) as server:
        yield server, await server.start()


@contextlib.contextmanager
def opened(url: str, count: int, sending: bytes = b"") -> Iterator[list[socket.socket]]:
    """``count`` connections to ``url``, each having sent ``sending``, then nothing."""
    host, port = url.removeprefix("http://").split(":")
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection((host, int(port)), timeout=WAIT)
            if sending:
                sock.sendall(sending)
            socks.append(sock)
        yield socks
    finally:
        for sock in socks:
            sock.close()


def head_of(url: str) -> bytes:
    return f"GET /health HTTP/1.1\r\nHost: {url.removeprefix('http://')}\r\n".encode()


def answer(sock: socket.socket) -> bytes:
    """What the server sends on ``sock`` until it closes it."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


async def test_connections_that_send_no_whole_head_are_closed_and_free_their_places(
    tmp_path: Path,
) -> None:
    # Four places in all: held for ever, the four would have every request answered 503.
    async with serving(tmp_path, limits=Limits(total=4)) as (_, url):
        with opened(url, 2) as silent, opened(url, 2, head_of(url)) as halfway:
            for sock in silent + halfway:
                closed = await asyncio.to_thread(hung_up, sock, WAIT)
                assert closed, "a head never sent is waited for"
                assert await asyncio.to_thread(answer, sock) == b""
        async with httpx.AsyncClient(timeout=WAIT) as client:
            assert (await client.get(url + "/health")).status_code == 200


def trickled(url: str, seconds: float) -> float | None:
    """Send a head that never ends, a byte every 50 ms; the seconds until the server
    closed the connection, ``None`` if it had not after ``seconds``."""
    with opened(url, 1) as (sock,):
        started = time.monotonic()
        head = head_of(url) + b"X-Endless: " + b"a" * 100_000
        for byte in head:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                return time.monotonic() - started
            if hung_up(sock, 0.05):
                return time.monotonic() - started
            if time.monotonic() - started > seconds:
                return None
    return None


async def test_a_head_sent_a_byte_at_a_time_is_closed_in_its_time(tmp_path: Path) -> None:
    async with serving(tmp_path) as (_, url):
        closed_after = await asyncio.to_thread(trickled, url, WAIT)
    assert closed_after is not None, "a head trickled a byte at a time is waited for"
    assert closed_after >= HEAD_S * 0.9  # its time, not less


async def test_the_next_head_on_a_kept_connection_has_its_time_too(tmp_path: Path) -> None:
    async with serving(tmp_path) as (_, url):
        with opened(url, 1, head_of(url) + b"\r\n") as (sock,):
            first = await asyncio.to_thread(sock.recv, 65536)
            assert first.startswith(b"HTTP/1.1 200")
            sock.sendall(head_of(url))  # the next request, never finished
            assert await asyncio.to_thread(hung_up, sock, WAIT)


async def test_a_head_past_its_bound_is_refused_unread(tmp_path: Path) -> None:
    line = b"X-Filler: " + b"a" * 1000 + b"\r\n"
    async with serving(tmp_path) as (server, url):
        with opened(url, 1) as (sock,):
            head = head_of(url) + line * (MAX_HEAD_BYTES // len(line) + 2)
            with contextlib.suppress(OSError):  # the server may close before all is sent
                await asyncio.to_thread(sock.sendall, head)
            received = await asyncio.to_thread(answer, sock)
        assert received.startswith(b"HTTP/1.1 400")
        async with httpx.AsyncClient(timeout=WAIT) as client:
            assert (await client.get(server.base_url + "/health")).status_code == 200


async def test_a_head_under_its_bound_is_served(tmp_path: Path) -> None:
    async with serving(tmp_path) as (_, url), httpx.AsyncClient(timeout=WAIT) as client:
        headers = {f"x-filler-{n}": "a" * 1000 for n in range(MAX_HEAD_BYTES // 1100)}
        assert (await client.get(url + "/health", headers=headers)).status_code == 200


async def test_a_websocket_outlives_the_head_deadline(tmp_path: Path) -> None:
    async with serving(tmp_path) as (server, _), connect(server.sync_url) as ws:
        await asyncio.sleep(HEAD_S * 3)
        await ws.send(encode(Hello(versions=[1], store_id="s1", client_id="c1")).decode())
        async with asyncio.timeout(WAIT):
            assert isinstance(decode(await ws.recv()), Welcome)


async def test_a_body_that_does_not_move_on_is_refused_and_its_connection_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(asgi, "BODY_STALL_S", HEAD_S)
    async with serving(tmp_path) as (_, url):
        host = url.removeprefix("http://")
        head = f"POST /keys HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1000\r\n\r\n"
        with opened(url, 1, head.encode() + b'{"store_id"') as (sock,):
            sent = await asyncio.to_thread(trickle_until_closed, sock)
        assert sent.startswith(b"HTTP/1.1 408")
        assert b'"error":"timeout"' in sent


def trickle_until_closed(sock: socket.socket) -> bytes:
    """Send a byte every 50 ms until the server answers and closes; what it sent."""
    received = b""
    began = time.monotonic()
    while time.monotonic() - began < WAIT:
        if hung_up(sock, 0.05):
            return received + answer(sock)
        with contextlib.suppress(OSError):
            sock.sendall(b" ")
    raise AssertionError(f"the server still reads a trickled body after {WAIT} s")


async def test_a_body_that_moves_on_is_read_however_long_it_takes() -> None:
    parts = [b"a" * asgi.BODY_PROGRESS_BYTES] * 5

    async def receive() -> dict[str, object]:
        await asyncio.sleep(0.4)  # each part in time, all of them not
        more = len(parts) > 1
        return {"type": "http.request", "body": parts.pop(), "more_body": more}

    request = Request({"type": "http", "method": "POST", "headers": []}, receive)
    body = await asgi.read_body(request, 1024 * 1024, stall_s=1.5)
    assert len(body) == 5 * asgi.BODY_PROGRESS_BYTES


async def test_a_body_over_its_limit_is_refused_before_the_rest_is_read() -> None:
    calls = 0

    async def receive() -> dict[str, object]:
        nonlocal calls
        calls += 1
        return {"type": "http.request", "body": b"a" * 600, "more_body": True}

    request = Request({"type": "http", "method": "POST", "headers": []}, receive)
    with pytest.raises(ValueError, match="longer than the limit of 1000 bytes"):
        await asgi.read_body(request, 1000)
    assert calls == 2


def test_a_head_timeout_must_be_above_zero() -> None:
    with pytest.raises(ConfigError, match="head_timeout"):
        ServerConfig(head_timeout=0)
