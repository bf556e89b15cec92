"""The files that live beside a file PJai keeps, under its name with something after
it: SQLite's journals (``-wal``, ``-shm``, ``-journal``) while a database is open or
after a crash, and a repair's copies (``.rebuilt``, ``.rebuilding`` while it rebuilds
a file, ``.damaged-<time>`` for the damaged one it set aside;
:mod:`pjai.hybrid.recovery`)."""

from __future__ import annotations

import glob
from collections.abc import Iterable
from pathlib import Path

__all__ = ["beside_kept", "damaged_copies", "with_journals"]

_SIDECARS = ("-wal", "-shm", "-journal")
"""What SQLite keeps beside a database file while it is open or after a crash."""

_BESIDE = ("", ".rebuilt", ".rebuilding")
"""What a repair keeps beside a file while it rebuilds it (:mod:`pjai.hybrid.recovery`)."""


def with_journals(path: Path) -> list[Path]:
    """``path`` and the SQLite journals that may be beside it."""
    return [path, *(path.with_name(path.name + s) for s in _SIDECARS)]


def beside_kept(target: Path, kept: Iterable[Path]) -> bool:
    """Whether ``target`` is one of the files ``kept`` (resolved paths), a repair's file
    beside one, or an SQLite journal of either."""
    for file in kept:
        if target.parent != file.parent or not target.name.startswith(file.name):
            continue
        rest = target.name[len(file.name) :]
        for beside in _BESIDE:
            if rest.startswith(beside) and rest[len(beside) :] in ("", *_SIDECARS):
                return True
        if rest.startswith(".damaged-"):
            return True
    return False


def damaged_copies(files: Iterable[Path]) -> list[Path]:
    """The damaged copies a repair set aside beside ``files`` (``.damaged-<time>``),
    without their journals."""
    found: set[Path] = set()
    for file in files:
        for copy in file.parent.glob(f"{glob.escape(file.name)}.damaged-*"):
            if not copy.name.endswith(_SIDECARS) and copy.is_file():
                found.add(copy)
    return sorted(found)
