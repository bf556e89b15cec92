"""A real full disk for tests: a small tmpfs mounted by the test, unmounted afterwards.

Mounting needs root (as in CI); elsewhere the tests that use it are skipped and say why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pjai.errors import PjaiError
from pjai.schema import Event
from pjai.schema.records import EventRecord
from tests.helpers import memory

FILLER = "filler"
FILLER_BYTES = 1 << 20


@contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (``mount -o size=``) at ``where``, holding a 1 MiB filler file.

    Deleting ``where / FILLER`` frees space once the disk is full.
    """
    if os.geteuid() != 0:
        pytest.skip("full-disk tests mount a tmpfs, which needs root")
    mount, umount = shutil.which("mount"), shutil.which("umount")
    if mount is None or umount is None:
        pytest.skip("full-disk tests need mount(8) and umount(8)")
    where.mkdir(parents=True)
    mounted = subprocess.run(
        [mount, "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        (where / FILLER).write_bytes(bytes(FILLER_BYTES))
        yield where
    finally:
        subprocess.run([umount, str(where)], check=True)


def commit_until_full(
    commit: Callable[[Event], list[EventRecord]], error: type[PjaiError]
) -> dict[str, str]:
    """Commit one memory at a time until the disk is full.

    Returns the acknowledged commits: memory id -> event id. The commit that failed
    was memory ``m{len(acknowledged)}``.
    """
    return commit_until_full_error(commit, error)[0]


def commit_until_full_error(
    commit: Callable[[Event], list[EventRecord]], error: type[PjaiError]
) -> tuple[dict[str, str], PjaiError]:
    """:func:`commit_until_full`, with the error the failing commit raised."""
    acknowledged: dict[str, str] = {}

    def fill() -> None:
        for i in range(100_000):
            [record] = commit(memory(f"m{i}", content=f"memory {i} " + "x" * (i % 500)))
            acknowledged[f"m{i}"] = record.id
        pytest.fail("the disk never filled up")

    with pytest.raises(error, match="the disk is full") as failed:
        fill()
    assert acknowledged, "the disk was full before the first commit"
    return acknowledged, failed.value
