"""Uploads to a served app (`pjai serve` in a child process) as a raw client sends them:
multipart forms on sockets of their own, sent in part, slowly or not at all, and what
they leave on the server's temporary disk."""

from __future__ import annotations

import errno
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from pjai.bench.webapp import WebProcess

BOUNDARY = "pjai-test-boundary"
WAIT_S = 30.0
"""How long a test waits for an answer the server owes it."""


def serve(tmp_path: Path, limit_mb: int, *args: str, data: str = "data") -> WebProcess:
    """`pjai serve --max-upload-mb limit_mb` (``args`` added) on the data directory
    ``tmp_path/data``, with its temporary files under ``tmp_path/tmp`` (shared by all the
    servers a test starts there)."""
    temp = tmp_path / "tmp"
    temp.mkdir(exist_ok=True)
    args = ("--max-upload-mb", str(limit_mb), *args)
    return WebProcess(tmp_path / data, *args, env={"TMPDIR": str(temp)})


def upload_route(url: str) -> str:
    """The address of the import form's upload route on a devtools page of the app at
    ``url``, read from the page as served (no browser: the page is never connected)."""
    page = httpx.get(url + "/devtools", timeout=WAIT_S)
    page.raise_for_status()
    found = re.search(r"/_nicegui/client/[^/\"]+/upload/[0-9]+", page.text)
    assert found is not None, "the devtools page holds no upload field"
    return url + found[0]


def form(size: int, name: str = "big.zip") -> tuple[bytes, bytes]:
    """The multipart form around a file of ``size`` bytes: what comes before it and
    after it."""
    head = (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/zip\r\n\r\n"
    ).encode()
    return head, f"\r\n--{BOUNDARY}--\r\n".encode()


def post(upload: str, body: bytes) -> httpx.Response:
    """``body``, a multipart form, posted to the upload route ``upload``."""
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    return httpx.post(upload, content=body, headers=headers, timeout=WAIT_S)


@contextmanager
def begun(
    upload: str, size: int = 4 * 1024 * 1024, sent: int | None = None
) -> Iterator[socket.socket]:
    """An upload of a ``size``-byte file of 0x01 bytes to ``upload``, on a connection of
    its own with ``sent`` bytes of the file sent (half without); the connection is
    closed, the upload abandoned, when the block ends (or before, by closing what it
    yields)."""
    sent = size // 2 if sent is None else sent
    address = urlsplit(upload)
    assert address.port is not None
    head, tail = form(size)
    request = (
        f"POST {address.path} HTTP/1.1\r\n"
        f"Host: {address.netloc}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {len(head) + size + len(tail)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", address.port), timeout=WAIT_S) as sock:
        sock.sendall(request + head + b"\1" * sent)
        yield sock


def read_answer(sock: socket.socket) -> bytes:
    """What the server answers on ``sock``, until it closes the connection."""
    return b"".join(iter(lambda: sock.recv(65536), b""))


def arriving(temp: Path) -> int:
    """How many uploads are being written under ``temp`` now."""
    return len(folders(temp, "upload.part"))


def folders(temp: Path, holding: str | None = None) -> set[Path]:
    """The upload folders under ``temp`` (those ``holding`` a file of that name)."""
    found = temp.glob("pjai-upload-*" if holding is None else f"pjai-upload-*/{holding}")
    return {path if holding is None else path.parent for path in found}


def until(condition: Callable[[], bool], what: str) -> None:
    """Wait until ``condition`` holds, for at most :data:`WAIT_S`."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"waited {WAIT_S} s for {what}"
        time.sleep(0.02)


def fill(disk: Path) -> Path:
    """A file that takes every byte left free on ``disk``."""
    path = disk / "everything-left"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        for block in (65536, 4096, 1):
            try:
                while os.write(fd, b"\0" * block):
                    pass
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    finally:
        os.close(fd)
    return path
