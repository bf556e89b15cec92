"""The upload limit in front of an app (no server): which requests it counts, how many
it lets through at once, and what `pjai serve` takes as a limit. Refusals through a
served app: browser/test_uploads.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from pjai.app import DataDir
from pjai.errors import ConfigError
from pjai.web import serve
from pjai.web.guard import ASGIApp, Receive, Scope, Send
from pjai.web.uploads import UploadLimit

LIMIT = 1000


def _echoing() -> tuple[ASGIApp, list[int]]:
    """An app that reads the whole body and answers 200; the lengths it read."""
    lengths: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        lengths.append(len(body))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"read"})

    return app, lengths


def _client(app: ASGIApp) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(UploadLimit(app, limit=LIMIT))
    return httpx.AsyncClient(transport=transport, base_url="http://app")


async def _chunks(total: int) -> AsyncIterator[bytes]:
    for _ in range(total // 100):
        yield b"x" * 100


@pytest.mark.anyio
async def test_only_nicegui_s_upload_route_is_limited() -> None:
    app, lengths = _echoing()
    async with _client(app) as client:
        other = await client.post("/login", content=b"x" * (2 * LIMIT))
        within = await client.post("/_nicegui/client/c1/upload/7", content=b"x" * LIMIT)
        past = await client.post("/_nicegui/client/c1/upload/7", content=b"x" * (LIMIT + 1))
        streamed = await client.post("/_nicegui/client/c1/upload/7", content=_chunks(2 * LIMIT))
    assert [other.status_code, within.status_code] == [200, 200]
    assert [past.status_code, streamed.status_code] == [413, 413]
    assert lengths == [2 * LIMIT, LIMIT]  # the refused ones never reached the app


def test_serve_refuses_a_limit_below_one_mb(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--max-upload-mb must be at least 1, got 0"):
        serve(DataDir(tmp_path / "data"), max_upload_mb=0)


@pytest.mark.anyio
async def test_an_upload_beyond_those_under_way_is_refused_unread() -> None:
    arrived: asyncio.Queue[None] = asyncio.Queue()
    go_on = asyncio.Event()
    read: list[bytes] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        read.append((await receive()).get("body", b""))
        arrived.put_nowait(None)
        await go_on.wait()  # held, as the upload field holds a request until its view ends
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"taken"})

    transport = httpx.ASGITransport(UploadLimit(app, limit=LIMIT, at_once=2))
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:

        def post(body: bytes) -> asyncio.Task[httpx.Response]:
            return asyncio.create_task(client.post("/_nicegui/client/c1/upload/7", content=body))

        held = [post(b"first"), post(b"second")]
        for _ in held:
            await asyncio.wait_for(arrived.get(), 10)
        refused = await post(b"third")
        assert refused.status_code == 503
        assert refused.text == (
            "The server is receiving 2 uploads already, as many as it takes at once; "
            "try again when one has ended.\n"
        )
        assert refused.headers["connection"] == "close"
        assert sorted(read) == [b"first", b"second"]  # the third's body never read

        go_on.set()
        assert [(await task).status_code for task in held] == [200, 200]
        assert (await post(b"fourth")).status_code == 200  # the places are free again
    assert sorted(read) == [b"first", b"fourth", b"second"]
