"""The private folders uploads are written to, and the sweep of those a stopped server
left behind.

Each upload is written to a folder of its own under the temporary directory
(``TMPDIR``), named ``pjai-upload-*`` and removed once the upload is done with. A
server that is killed (SIGKILL, out of memory, the power gone) cannot remove it, and
the folder would hold up to a whole upload on the temporary disk for ever. So each
folder is locked (``flock``, on the folder itself: no file is added) by the process
writing to it, for as long as it does; the kernel lets go of the lock when that process
ends, however it ends. :func:`sweep` removes the folders that no process holds: when
the server starts, and before an upload at most every :data:`SWEEP_EVERY_S`. A folder
is locked before anything is written to it, so an empty folder that no one holds may
be one being made this moment: it is left until it is :data:`NEW_FOLDER_S` old.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["NEW_FOLDER_S", "PREFIX", "SWEEP_EVERY_S", "private_folder", "sweep"]

log = logging.getLogger(__name__)

PREFIX = "pjai-upload-"
"""How the name of an upload's folder begins."""

NEW_FOLDER_S = 60.0
"""How old an empty folder that no one holds must be before a sweep removes it: its
maker locks it the moment after making it, so only a process stopped in that moment
leaves one (a minute covers a process paused there by a busy machine)."""

SWEEP_EVERY_S = 60.0
"""How often, at the most, an upload sweeps before it begins (another server on the
machine may have been killed since this one started); more often, a stream of uploads
refused at once would each read the whole temporary directory."""


@contextlib.contextmanager
def private_folder() -> Iterator[Path]:
    """A folder of the temporary directory that only this process uses, held (locked)
    for the block and removed with everything in it when the block ends, however it
    ends; another process's :func:`sweep` leaves it alone meanwhile."""
    folder = Path(tempfile.mkdtemp(prefix=PREFIX))
    held = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        # Never refused: a sweep takes no empty folder this new.
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield folder
    finally:
        try:
            shutil.rmtree(folder, ignore_errors=True)
        finally:
            os.close(held)  # the lock goes only once the folder has


def sweep(where: Path | None = None) -> list[Path]:
    """Remove the upload folders under ``where`` (the temporary directory) that this
    user owns and no process holds, left there by a server stopped mid-upload; the
    folders removed. A folder a live upload holds, in this process or another, stays."""
    where = Path(tempfile.gettempdir()) if where is None else where
    try:
        with os.scandir(where) as entries:
            found = [Path(e.path) for e in entries if e.name.startswith(PREFIX)]
    except OSError:
        return []  # the temporary directory gone or unreadable: nothing of ours to see
    removed = [folder for folder in found if _removed(folder)]
    if removed:
        log.info("removed %d upload folder(s) a stopped server left in %s", len(removed), where)
    return removed


def _removed(folder: Path) -> bool:
    """Remove ``folder`` if no process holds it; whether it did."""
    try:
        held = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return False  # removed meanwhile, not a folder, or another user's
    try:
        found = os.fstat(held)
        if found.st_uid != os.geteuid() or _new_and_empty(folder, found.st_mtime):
            return False
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a live upload's (a lock by another descriptor holds here too)
        # Locked, but perhaps removed since by its owner, and made anew at that path.
        if not os.path.samestat(found, os.stat(folder, follow_symlinks=False)):
            return False
        shutil.rmtree(folder, ignore_errors=True)
        return not folder.exists()
    except OSError:
        return False
    finally:
        os.close(held)


def _new_and_empty(folder: Path, changed: float) -> bool:
    """Whether ``folder``, changed at ``changed`` (seconds since the epoch), may be one
    being made this moment: empty, and not :data:`NEW_FOLDER_S` old."""
    if time.time() - changed >= NEW_FOLDER_S:
        return False
    with os.scandir(folder) as entries:
        return next(entries, None) is None
