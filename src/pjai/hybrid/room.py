"""Room on a disk for work about to write there, checked before it writes anything, with
a spare margin kept free."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from pjai.errors import NoRoomError

__all__ = ["SPARE_BYTES", "check_room", "megabytes"]

SPARE_BYTES = 64 * 1024 * 1024
"""The room PJai leaves free on a disk after the work it checks for (an upload to the
web app, an import): a full disk fails whatever else writes there, the journals of
PJai's own databases on it (which grow with each commit, by up to the 4 MB of a
write-ahead log between checkpoints), the server's log, other programs' temporary
files. 64 MiB holds many such checkpoints, and is little on any disk that holds a
store."""


def megabytes(size: float) -> str:
    """``size`` bytes in MB of 1,048,576 bytes, for a person to read ("6.9 MB")."""
    return f"{size / (1024 * 1024):,.1f} MB"


def check_room(
    needs: Iterable[tuple[Path, int]], doing: str, advice: str, *, spare: int = SPARE_BYTES
) -> None:
    """:class:`~pjai.errors.NoRoomError` (its message: ``doing``, what is short where,
    then ``advice``) unless the disk of each path in ``needs`` (a file or folder to be
    written, made or not) has room for the bytes all the paths on it need, and
    ``spare`` besides."""
    disks: dict[int, tuple[Path, int]] = {}
    for path, size in needs:
        where = _existing(path)
        disk = os.stat(where).st_dev
        first, before = disks.get(disk, (where, 0))
        disks[disk] = (first, before + size)
    for where, size in disks.values():
        free = shutil.disk_usage(where).free
        if size + spare > free:
            raise NoRoomError(
                f"{doing} needs {megabytes(size)} on the disk of {where}, and keeps "
                f"{megabytes(spare)} spare there; it has {megabytes(free)} free. {advice}"
            )


def _existing(path: Path) -> Path:
    """``path``, or the nearest of its folders that exists."""
    for place in (path.absolute(), *path.absolute().parents):
        if place.exists():
            return place
    return Path(path.absolute().anchor)
