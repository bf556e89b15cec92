"""Uploads to a served app (`pjai serve` in a child process) from raw clients, without a
browser: what a client that sends its body slowly, or not at all, holds on the server,
and for how long. The page's own answers to them: browser/test_uploads.py."""

from __future__ import annotations

import select
import socket
import time
from pathlib import Path

from tests.tmpfs import tmpfs
from tests.web.uploading import (
    WAIT_S,
    arriving,
    begun,
    folders,
    form,
    post,
    read_answer,
    serve,
    until,
    upload_route,
)

TIMEOUT_S = 3.0
"""The served app's ``--upload-timeout-s`` in these tests."""


def _trickled(*socks: socket.socket) -> list[bytes]:
    """Send a byte of the file on each of ``socks`` every half second until the server
    answers on it; the answers."""
    began = time.monotonic()
    answers: dict[socket.socket, bytes] = {}
    while len(answers) < len(socks):
        assert time.monotonic() - began < WAIT_S, f"no answer in {WAIT_S} s to a trickle"
        waiting = [sock for sock in socks if sock not in answers]
        readable, _, _ = select.select(waiting, [], [], 0.5)
        for sock in waiting:
            if sock not in readable:
                try:
                    sock.sendall(b"\1")
                    continue
                except OSError:
                    pass  # closed by the server as the byte went: its answer is there
            answers[sock] = read_answer(sock)
    return [answers[sock] for sock in socks]


def test_uploads_trickling_their_bodies_are_ended_and_free_their_places(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    with serve(tmp_path, 16, "--upload-timeout-s", f"{TIMEOUT_S:g}") as web:
        upload = upload_route(web.url)
        with begun(upload, size=1024 * 1024, sent=0) as first, begun(upload, sent=0) as second:
            until(lambda: arriving(temp) == 2, "two uploads to arrive")
            head, tail = form(10)
            busy = post(upload, head + b"x" * 10 + tail)
            assert busy.status_code == 503  # both places held
            assert busy.headers["retry-after"] == "30"

            answers = _trickled(first, second)
        for answer in answers:
            assert answer.startswith(b"HTTP/1.1 408 "), answer
            assert (
                f"The server stopped waiting for this upload: less than 64 KiB of it "
                f"arrived in {TIMEOUT_S:g} s (pjai serve --upload-timeout-s)."
            ).encode() in answer
        assert list(temp.glob("pjai-upload-*")) == []  # what arrived went with them

        head, tail = form(10)
        taken = post(upload, head + b"x" * 10 + tail)
        assert taken.status_code == 200, taken.text  # the places are free again


def test_what_a_killed_server_left_goes_when_a_server_starts_and_a_live_upload_stays(
    tmp_path: Path,
) -> None:
    temp = tmp_path / "tmp"
    with serve(tmp_path, 16, data="live") as live:
        upload = upload_route(live.url)
        size = 1024 * 1024
        with begun(upload, size=size, sent=size // 2) as arriving_there:
            until(lambda: arriving(temp) == 1, "the live upload to arrive")
            [held] = folders(temp)
            killed = serve(tmp_path, 16, data="killed")
            with killed, begun(upload_route(killed.url), size=4 * size, sent=2 * size):
                until(lambda: arriving(temp) == 2, "the other upload to arrive")
                [left] = folders(temp) - {held}
                part = left / "upload.part"
                # Written a MiB at a time: killed once some of it is on the disk.
                until(lambda: part.stat().st_size >= size, "the other upload to be written")
                killed.process.kill()
                killed.process.wait()
            assert part.stat().st_size >= size  # left there by the killed server

            with serve(tmp_path, 16, data="next"):
                assert folders(temp) == {held}  # swept as it started; the live one stays

            _, tail = form(0)
            arriving_there.sendall(b"\1" * (size - size // 2) + tail)
            answer = read_answer(arriving_there)
        assert answer.startswith(b"HTTP/1.1 200 "), answer  # taken whole
        assert folders(temp) == set()


def test_an_upload_that_would_leave_less_than_the_spare_room_is_refused_unread(
    tmp_path: Path,
) -> None:
    mb = 1024 * 1024
    # 72 MiB, 1 MiB of it taken: 7 MB for uploads, past the 64 MB the server keeps spare.
    with tmpfs(tmp_path / "tmp", "72m") as temp, serve(tmp_path, 16) as web:
        upload = upload_route(web.url)
        with begun(upload, size=8 * mb, sent=0) as sock:
            answer = read_answer(sock)
        assert answer.startswith(b"HTTP/1.1 507 "), answer
        assert (
            "This upload needs 8.0 MB of temporary space, and the server keeps 64.0 MB spare "
            f"on its temporary disk ({temp}), which has 71.0 MB free."
        ).encode() in answer
        assert folders(temp) == set()

        head, tail = form(6 * mb)
        taken = post(upload, head + b"\1" * 6 * mb + tail)
        assert taken.status_code == 200, taken.text
        assert folders(temp) == set()
