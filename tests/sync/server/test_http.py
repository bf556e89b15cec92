"""The server's HTTP answers over a real uvicorn server, to clients that ask for large
bodies and read slowly or not at all."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import msgspec
import pytest

from pjai.schema.records import EventRecord, Position
from pjai.sync.server import ServerConfig, SyncServer
from pjai.sync.server.places import BODIES_PER_TOKEN
from tests.sync.server.test_websocket import hung_up, raw_socket

pytestmark = pytest.mark.anyio

WAIT = 30  # seconds before a wait counts as a hang
PAGE = "/pull?store_id=s1"


def large_events(count: int = 8) -> list[EventRecord]:
    """Events of a newer vocabulary with a megabyte of arguments each: a page of them
    is far more than the socket buffers on the way hold."""
    args = msgspec.Raw(msgspec.json.encode({"x": "y" * (1024 * 1024)}))
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        EventRecord(
            id=f"e{n}",
            name="v9.Large",
            args=args,
            position=Position(n),
            parent=Position(n - 1),
            client_id="c1",
            session_id="s1",
            at=at,
        )
        for n in range(1, count + 1)
    ]


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, send_timeout: float) -> AsyncIterator[tuple[SyncServer, str]]:
    """A server whose store s1 holds a large page of events; yields it and its URL."""
    config = ServerConfig(send_timeout=send_timeout)
    async with SyncServer.open(tmp_path / "sync.db", config) as server:
        server.hub.log.append("s1", large_events())
        yield server, await server.start()


@contextlib.contextmanager
def asking(url: str, token: str, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections that each ask for the page, then read nothing."""
    host, port = url.removeprefix("http://").split(":")
    request = f"GET {PAGE} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n"
    socks = []
    try:
        for _ in range(count):
            sock = raw_socket()
            sock.setblocking(True)
            sock.connect((host, int(port)))
            sock.sendall(request.encode())
            socks.append(sock)
        yield socks
    finally:
        for sock in socks:
            sock.close()


async def test_a_client_that_asks_and_reads_nothing_is_reset(tmp_path: Path) -> None:
    async with serving(tmp_path, send_timeout=0.3) as (server, url):
        assert server.database is not None
        secret, _ = server.database.tokens.create("s1", "read")
        with asking(url, secret, 1) as (stuck,):
            events = await asyncio.to_thread(hung_up, stuck, WAIT)
            assert events, "the server keeps the answer of a client that reads nothing"
        async with asyncio.timeout(WAIT):
            while server.hub.bodies.held:  # noqa: ASYNC110  # no event says it
                await asyncio.sleep(0.01)


async def test_clients_that_read_nothing_hold_few_bodies_and_others_are_served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with serving(tmp_path, send_timeout=3600) as (server, url):
        assert server.database is not None
        stuck, _ = server.database.tokens.create("s1", "read")
        other, _ = server.database.tokens.create("s1", "read")
        log = server.hub.log
        made = 0  # pages read from the log: each is a body the server holds
        read = log.read

        def counted(store_id: str, after: Position, limit: int) -> list[EventRecord]:
            nonlocal made
            made += 1
            return read(store_id, after, limit)

        monkeypatch.setattr(log, "read", counted)
        asked = BODIES_PER_TOKEN + 3
        with asking(url, stuck, asked):
            bodies = server.hub.bodies
            held = (BODIES_PER_TOKEN, asked - BODIES_PER_TOKEN)  # pages made, asks waiting
            async with asyncio.timeout(WAIT):
                while made < asked and (made, bodies.waiting) != held:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            assert made == BODIES_PER_TOKEN, f"{made} bodies for one token's {asked} asks"
            # Another token's client is served meanwhile.
            async with httpx.AsyncClient(base_url=url, timeout=WAIT) as http:
                answer = await http.get(PAGE, headers={"Authorization": f"Bearer {other}"})
            assert answer.status_code == 200
            assert len(answer.json()["events"]) == 7  # as many as fit in one frame
        async with asyncio.timeout(WAIT):
            while bodies.held or bodies.waiting:  # noqa: ASYNC110  # no event says it
                await asyncio.sleep(0.01)


async def test_requests_past_the_token_s_rate_are_refused_with_429(tmp_path: Path) -> None:
    """/pull and /keys cost the server work as pulls do: one token's requests are
    limited with its frames other than pushes, and another token's are served."""
    config = ServerConfig(request_rate=0.1)  # bursts of one request, one every 10 s
    async with SyncServer.open(tmp_path / "sync.db", config) as server:
        assert server.database is not None
        hasty, _ = server.database.tokens.create("s1", "read")
        other, _ = server.database.tokens.create("s1", "read")
        url = await server.start()
        async with httpx.AsyncClient(base_url=url, timeout=WAIT) as http:
            asked = {"Authorization": f"Bearer {hasty}"}
            assert (await http.get(PAGE, headers=asked)).status_code == 200
            for path in (PAGE, "/keys?store_id=s1"):
                refused = await http.get(path, headers=asked)
                assert refused.status_code == 429
                body = refused.json()
                assert body["error"] == "rate_limited"
                assert body["message"].startswith("too many requests for this token")
                assert body["retry_after"] > 0
                assert int(refused.headers["retry-after"]) >= 1
            served = await http.get(PAGE, headers={"Authorization": f"Bearer {other}"})
            assert served.status_code == 200
