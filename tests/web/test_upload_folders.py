"""Upload folders and their sweep across processes: what a killed process left goes,
what a live one holds stays, whichever process it is. Through served apps:
test_uploads_served.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pjai.web.upload_folders import NEW_FOLDER_S, private_folder, sweep

HOLDER = """
import sys, tempfile
tempfile.tempdir = sys.argv[1]
from pjai.web.upload_folders import private_folder
with private_folder() as folder:
    (folder / "upload.part").write_bytes(b"x" * 1000)
    print(folder, flush=True)
    sys.stdin.read()  # until the test lets go, or kills this process
"""


@contextmanager
def _held(temp: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """A process holding an upload folder under ``temp`` with a file in it, and the
    folder; the process lets go of it when the block ends (if it still runs)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(temp)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        assert process.stdout is not None
        folder = Path(process.stdout.readline().strip())
        try:
            yield process, folder
        finally:
            process.communicate(timeout=30)


def _folders(temp: Path) -> list[Path]:
    return sorted(temp.glob("pjai-upload-*"))


def test_a_killed_process_s_folder_goes_and_a_live_one_s_stays(tmp_path: Path) -> None:
    with _held(tmp_path) as (live, kept), _held(tmp_path) as (killed, left):
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        assert _folders(tmp_path) == sorted([kept, left])  # the killed one could not

        assert sweep(tmp_path) == [left]
        assert _folders(tmp_path) == [kept]
        assert (kept / "upload.part").read_bytes() == b"x" * 1000  # untouched
    assert live.returncode == 0
    assert _folders(tmp_path) == []  # removed by its own process once it let go


def test_a_folder_this_process_holds_stays(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    with private_folder() as folder:
        (folder / "upload.part").write_bytes(b"arriving")
        assert sweep(tmp_path) == []
        assert (folder / "upload.part").read_bytes() == b"arriving"
    assert _folders(tmp_path) == []


def test_an_empty_folder_no_one_holds_stays_until_it_is_old(tmp_path: Path) -> None:
    # Empty: perhaps one made this moment, not locked yet.
    new = tmp_path / "pjai-upload-new"
    new.mkdir()
    assert sweep(tmp_path) == []
    an_hour_ago = time.time() - max(NEW_FOLDER_S, 3600)
    os.utime(new, (an_hour_ago, an_hour_ago))
    assert sweep(tmp_path) == [new]

    # Anything in it: left by a process that held it, even a moment ago.
    left = tmp_path / "pjai-upload-left"
    left.mkdir()
    (left / "upload.part").write_bytes(b"x")
    assert sweep(tmp_path) == [left]


def test_what_is_not_this_user_s_upload_folder_stays(tmp_path: Path) -> None:
    other = tmp_path / "not-an-upload"
    other.mkdir()
    (other / "file").write_bytes(b"x")
    (tmp_path / "pjai-upload-file").write_bytes(b"a file, not a folder")
    (tmp_path / "pjai-upload-link").symlink_to(other)
    owned = []
    if os.geteuid() == 0:  # root may give a folder to another user
        owned.append(tmp_path / "pjai-upload-theirs")
        owned[0].mkdir()
        (owned[0] / "upload.part").write_bytes(b"x")
        os.chown(owned[0], 65534, 65534)
    assert sweep(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["not-an-upload", "pjai-upload-file", "pjai-upload-link", *(p.name for p in owned)]
    )
    assert (other / "file").exists()
