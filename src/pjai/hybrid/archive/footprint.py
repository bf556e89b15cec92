"""The room an import of an archive takes on disk, checked before it writes anything."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from pjai.hybrid.archive.format import ArchiveManifest
from pjai.hybrid.files import STORE_FILE
from pjai.hybrid.room import check_room, megabytes
from pjai.sql.engine import sqlite_file

__all__ = ["WORK_FACTOR", "check_import_room"]

WORK_FACTOR = 2.5
"""The room each SQLite database an import fills (the store; the SQL primary when it is
made of SQLite files) takes at the import's peak, per byte of the archive's files
inflated: the events and rows, their indexes (the store's full-text index among them),
and the write-ahead log holding what was written since its last checkpoint. Both
together peaked at 4.3 to 4.6 times the inflated files importing archives of 200 to
8,000 memories (0.3 to 16 MB inflated, 0.1 to 3.8 MB zipped)."""


def check_import_room(
    target: Path, archive: Path, manifest: ArchiveManifest, urls: Sequence[str]
) -> None:
    """:class:`~pjai.errors.NoRoomError` unless the disks the import of ``archive``
    (its checked ``manifest``) into ``target`` writes to have room for it, with the
    spare room kept free there; ``urls``: the SQL primary's shards (PostgreSQL's room
    is the database server's to keep)."""
    inflated = sum(file.size for file in manifest.files.values())
    each = math.ceil(WORK_FACTOR * inflated)
    needs = [(target / STORE_FILE, each)]
    files = [file for file in map(sqlite_file, urls) if file is not None]
    needs += [(file, math.ceil(each / len(files))) for file in files]  # rows spread over them
    check_room(
        needs,
        f"the import of {archive} ({megabytes(inflated)} once unzipped)",
        "Free some space there, or import into a data directory on a larger disk.",
    )
