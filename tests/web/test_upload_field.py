"""The upload field's form reading (no server): the file of a multipart form written once,
whole or not at all, and removed after, however the upload ends. Through a served app:
browser/test_uploads.py."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from pjai.web.upload_field import received_file

pytestmark = pytest.mark.anyio

BOUNDARY = "b0undary"
TYPE = f"multipart/form-data; boundary={BOUNDARY}"


@pytest.fixture
def temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary directory uploads are written under, for the test."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def _left(temp: Path) -> list[str]:
    """What is under ``temp``, by name."""
    return sorted(path.name for path in temp.rglob("*"))


def _part(name: str, content: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (
        f'; filename="{filename}"' if filename is not None else ""
    )
    return f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content


def _form(*parts: bytes) -> bytes:
    return b"\r\n".join(parts) + f"\r\n--{BOUNDARY}--\r\n".encode()


async def _taking(request: Request) -> Response:
    """What the file of the request's form was, seen while it existed."""
    try:
        async with received_file(request) as file:
            seen = {
                "name": file.name,
                "size": file.size,
                "sha256": hashlib.sha256(file.path.read_bytes()).hexdigest(),
                "folder": sorted(p.name for p in file.path.parent.iterdir()),
            }
    except Exception as exc:  # the refusal, as the field answers it
        return PlainTextResponse(str(exc), getattr(exc, "status", 500))
    return JSONResponse(seen)


def _client() -> httpx.AsyncClient:
    app = Starlette(routes=[Route("/upload", _taking, methods=["POST"])])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://app")


async def test_the_file_of_a_form_arrives_whole_under_its_chosen_name(temp: Path) -> None:
    content = bytes(range(256)) * 20_000  # past the 1 MiB written at a time
    body = _form(_part("note", b"dropped"), _part("file", content, "C:\\Users\\ada\\a.zip"))
    async with _client() as client:
        answer = await client.post("/upload", content=body, headers={"Content-Type": TYPE})
    assert answer.status_code == 200
    assert answer.json() == {
        "name": "a.zip",
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        "folder": ["upload"],  # the whole file, and nothing else
    }
    assert _left(temp) == []


@pytest.mark.parametrize(
    ("body", "type_", "why"),
    [
        (_form(_part("a", b"1", "a.zip"), _part("b", b"2", "b.zip")), TYPE, "holds one file"),
        (_form(_part("note", b"no file")), TYPE, "holds no file"),
        (_part("file", b"cut short", "a.zip"), TYPE, "ended before its file did"),
        (b"file=a.zip", "application/x-www-form-urlencoded", "must be a multipart/form-data"),
        (b"--other\r\n", TYPE, "not valid multipart"),
    ],
    ids=["two files", "no file", "no closing boundary", "not multipart", "malformed"],
)
async def test_a_form_that_is_not_one_whole_file_is_refused_and_nothing_kept(
    temp: Path, body: bytes, type_: str, why: str
) -> None:
    async with _client() as client:
        answer = await client.post("/upload", content=body, headers={"Content-Type": type_})
    assert answer.status_code == 400
    assert why in answer.text
    assert _left(temp) == []


async def test_a_client_gone_mid_upload_leaves_nothing(temp: Path) -> None:
    app = Starlette(routes=[Route("/upload", _taking, methods=["POST"])])
    messages: list[dict[str, object]] = [
        {"type": "http.request", "body": _part("file", b"x" * 100_000, "a.zip"), "more_body": True},
        {"type": "http.disconnect"},
    ]
    seen: list[list[str]] = []

    async def receive() -> dict[str, object]:
        seen.append(_left(temp))
        return messages.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        pass  # no one is left to read the answer

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/upload",
        "headers": [(b"content-type", TYPE.encode())],
        "query_string": b"",
    }
    await app(scope, receive, send)
    assert seen[-1][-1] == "upload.part"  # being written when the client went
    assert _left(temp) == []
