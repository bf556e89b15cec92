"""The client's WebSocket end against a server that refuses the handshake as too soon:
the wait it asks for is read from its answer, and nothing else passes for one."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from pjai.sync.transport import ConnectionClosed
from pjai.sync.websocket import websocket_connector

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def refusing(body: bytes, retry_after: str | None) -> AsyncIterator[str]:
    """A server that answers every handshake with a 429 of ``body`` (JSON) and, unless
    None, the header ``Retry-After: retry_after``; yields its sync URL."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        header = f"Retry-After: {retry_after}\r\n" if retry_after is not None else ""
        writer.write(
            f"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n{header}connection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"ws://127.0.0.1:{port}/sync"


@pytest.mark.parametrize(
    ("body", "retry_after", "asked"),
    [
        (b'{"error":"rate_limited","retry_after":2.5}', "3", 2.5),  # the body's, exact
        (b'{"error":"rate_limited"}', "3", 3.0),  # the header's, whole seconds
        (b'{"error":"rate_limited","retry_after":true}', "7", 7.0),  # true is no number
        (b'{"error":"rate_limited","retry_after":"9"}', None, None),  # nor is a string
        (b'{"retry_after":1' + b"0" * 400 + b"}", None, math.inf),  # held_for caps it
        (b"not json", "Wed, 21 Oct 2026 07:28:00 GMT", None),  # a date: the backoff alone
        (b"", None, None),
    ],
)
async def test_a_refusal_as_too_soon_carries_the_wait_it_asked_for(
    body: bytes, retry_after: str | None, asked: float | None
) -> None:
    async with refusing(body, retry_after) as url:
        with pytest.raises(ConnectionClosed) as refused:
            await websocket_connector(url, open_timeout=5)()
    assert "429" in str(refused.value)
    assert refused.value.retry_after == asked
