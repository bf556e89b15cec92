"""Request heads sent to a served app (`pjai serve` in a child process) by raw clients:
one never sent, or sent without end, does not hold its connection."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from pjai.bench.webapp import WebProcess
from pjai.sync.server.sockets import MAX_HEAD_BYTES
from tests.sync.server.test_slow_requests import answer
from tests.sync.server.test_websocket import hung_up

WAIT_S = 30.0
HEAD_S = 0.5
"""The served app's ``--head-timeout-s`` in these tests."""


def connection(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=WAIT_S)


def head_of(url: str) -> bytes:
    return f"GET / HTTP/1.1\r\nHost: {urlsplit(url).netloc}\r\n".encode()


def test_heads_not_sent_in_time_or_past_their_bound_end_their_connections(
    tmp_path: Path,
) -> None:
    with WebProcess(tmp_path / "data", "--head-timeout-s", f"{HEAD_S:g}") as web:
        with connection(web.url) as silent, connection(web.url) as halfway:
            halfway.sendall(head_of(web.url))
            for sock in (silent, halfway):
                assert hung_up(sock, WAIT_S), "a head never finished is waited for"
                assert answer(sock) == b""

        filler = b"X-Filler: " + b"a" * 1000 + b"\r\n"
        with connection(web.url) as flooding:
            with contextlib.suppress(OSError):  # closed before all of it is sent
                flooding.sendall(head_of(web.url) + filler * (MAX_HEAD_BYTES // len(filler) + 2))
            assert answer(flooding).startswith(b"HTTP/1.1 400")

        assert httpx.get(web.url + "/", timeout=WAIT_S).status_code == 200
