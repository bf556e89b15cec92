"""The upload limit in front of an app (no server): which requests it counts, how many
it lets through at once, how much room on the temporary disk it asks for, and what
`pjai serve` takes as a limit. Refusals through a served app: test_uploads_served.py and
browser/test_uploads.py."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from pjai.app import UPLOAD_PROGRESS_BYTES, DataDir
from pjai.errors import ConfigError
from pjai.web import serve
from pjai.web.guard import ASGIApp, Receive, Scope, Send
from pjai.web.uploads import UploadLimit

LIMIT = 1000
WAIT_S = 10.0
"""How long a test waits for an answer the limit owes it."""


@pytest.fixture(autouse=True)
def temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary directory the limit sweeps, for the test."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


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


@pytest.mark.parametrize("timeout", [0.0, -1.0, float("nan")])
def test_serve_refuses_an_upload_timeout_not_above_zero(tmp_path: Path, timeout: float) -> None:
    with pytest.raises(ConfigError, match="--upload-timeout-s must be above 0, got"):
        serve(DataDir(tmp_path / "data"), upload_timeout_s=timeout)


@pytest.mark.parametrize("timeout", [0.0, -1.0, float("nan")])
def test_serve_refuses_a_head_timeout_not_above_zero(tmp_path: Path, timeout: float) -> None:
    with pytest.raises(ConfigError, match="--head-timeout-s must be above 0, got"):
        serve(DataDir(tmp_path / "data"), head_timeout_s=timeout)


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
        assert refused.headers["retry-after"] == "30"  # seconds
        assert sorted(read) == [b"first", b"second"]  # the third's body never read

        go_on.set()
        assert [(await task).status_code for task in held] == [200, 200]
        assert (await post(b"fourth")).status_code == 200  # the places are free again
    assert sorted(read) == [b"first", b"fourth", b"second"]


MB = 1024 * 1024


@pytest.mark.anyio
async def test_an_upload_the_temporary_disk_has_no_room_for_is_refused_unread() -> None:
    go_on, arrived = asyncio.Event(), asyncio.Event()
    read: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        read.append(len((await receive()).get("body", b"")))
        arrived.set()
        await go_on.wait()  # held, as the upload field holds a request until its view ends
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"taken"})

    # 74 MB free: 10 MB of it for uploads, past the 64 MB kept spare.
    limit = UploadLimit(app, limit=16 * MB, at_once=3, space=lambda: ("/srv/tmp", 74 * MB))

    async def ask(length: int | None) -> tuple[int, str]:
        """What ``limit`` answers an upload declaring ``length`` bytes (a chunked one
        without); its body is ``length`` bytes, or one."""
        headers = [] if length is None else [(b"content-length", str(length).encode())]
        scope = {"type": "http", "path": "/_nicegui/client/c1/upload/7", "headers": headers}
        sent: list[MutableMapping[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"x" * (length or 1)}

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)

        with anyio.fail_after(WAIT_S):  # an upload taken is held until go_on
            await limit(scope, receive, send)
        return sent[0]["status"], sent[1]["body"].decode()

    disk = "the server keeps 64.0 MB spare on its temporary disk (/srv/tmp), which has"
    advice = "Free some space there, or serve with TMPDIR set to a larger disk.\n"
    assert await ask(11 * MB) == (
        507,
        f"This upload needs 11.0 MB of temporary space, and {disk} 74.0 MB free. {advice}",
    )
    held = asyncio.create_task(ask(6 * MB))
    await asyncio.wait_for(arrived.wait(), 10)  # the held upload is under way
    assert await ask(5 * MB) == (
        507,
        f"This upload needs 5.0 MB of temporary space, and {disk} 74.0 MB free, 6.0 MB of "
        f"it kept for the uploads under way. {advice}",
    )
    assert await ask(None) == (
        507,
        "This upload names no length, so it needs as much temporary space as the largest "
        f"this app takes, 16.0 MB, and {disk} 74.0 MB free, 6.0 MB of it kept for the "
        f"uploads under way. {advice}",
    )
    assert read == [6 * MB]  # none of the refused ones' bodies
    go_on.set()
    assert await held == (200, "taken")
    assert await ask(4 * MB) == (200, "taken")  # within what is free once it ended
    assert read == [6 * MB, 4 * MB]


async def _answer(limit: UploadLimit, receive: Receive) -> tuple[int, str]:
    """What ``limit`` answers an upload whose body ``receive`` gives."""
    scope = {"type": "http", "path": "/_nicegui/client/c1/upload/7", "headers": []}
    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    with anyio.fail_after(WAIT_S):
        await limit(scope, receive, send)
    return sent[0]["status"], sent[1]["body"].decode()


@pytest.mark.anyio
async def test_an_upload_whose_body_stops_moving_on_is_ended_and_its_place_freed() -> None:
    app, lengths = _echoing()
    ended: list[BaseException] = []

    async def reading(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await app(scope, receive, send)
        except BaseException as exc:  # as the upload field's folder goes with it
            ended.append(exc)
            raise

    limit = UploadLimit(reading, limit=LIMIT, at_once=1, timeout=0.3)

    async def trickle() -> dict[str, Any]:
        await anyio.sleep(0.02)  # a byte at a time, for ever
        return {"type": "http.request", "body": b"x", "more_body": True}

    assert await _answer(limit, trickle) == (
        408,
        "The server stopped waiting for this upload: less than 64 KiB of it arrived in "
        "0.3 s (pjai serve --upload-timeout-s). Send it again over a steadier connection.\n",
    )
    assert len(ended) == 1  # the app's read failed: it let go of what it had
    assert limit.kept == []

    async def whole() -> dict[str, Any]:
        return {"type": "http.request", "body": b"taken"}

    assert await _answer(limit, whole) == (200, "read")  # its place is free again
    assert lengths == [5]


@pytest.mark.anyio
async def test_a_slow_body_that_keeps_moving_on_is_taken_whatever_the_app_s_own_pace() -> None:
    step, chunks = UPLOAD_PROGRESS_BYTES, 30

    async def steady_app(scope: Scope, receive: Receive, send: Send) -> None:
        total = 0
        while True:
            message = await receive()
            total += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
            if total == step:
                await anyio.sleep(0.5)  # a slow disk: past the timeout between two reads
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(total).encode()})

    limit = UploadLimit(steady_app, limit=chunks * step, timeout=0.3)
    left = iter(range(chunks))

    async def steady() -> dict[str, Any]:
        # Each 64 KiB well within the timeout, all of them past it.
        await anyio.sleep(0.02)
        more = next(left) < chunks - 1
        return {"type": "http.request", "body": b"x" * step, "more_body": more}

    assert await _answer(limit, steady) == (200, str(chunks * step))


@pytest.mark.anyio
async def test_an_upload_sweeps_what_a_killed_server_left_before_it_measures_the_room(
    temp: Path,
) -> None:
    def left() -> Path:
        """A folder an upload of a killed server left, no process holding it."""
        folder = Path(tempfile.mkdtemp(prefix="pjai-upload-"))
        (folder / "upload.part").write_bytes(b"x" * 100)
        return folder

    first = left()
    seen: list[bool] = []

    def space() -> tuple[str, int]:
        seen.append(first.exists())
        return str(temp), 100 * MB

    app, _ = _echoing()
    limit = UploadLimit(app, limit=LIMIT, space=space)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(limit), base_url="http://app"
    ) as client:
        assert (await client.post("/_nicegui/client/c1/upload/7", content=b"x")).status_code == 200
        assert seen == [False]  # gone before the room was measured
        second = left()
        assert (await client.post("/_nicegui/client/c1/upload/7", content=b"x")).status_code == 200
    assert second.exists()  # swept at most once a minute: not by the next upload
