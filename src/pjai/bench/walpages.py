"""Pages a commit writes, by the table or index they belong to.

SQLite in WAL mode appends every page a transaction changed to the write-ahead log
as one frame: a 24-byte header that starts with the page's number, then the page.
Emptying the log, committing, then reading the frame headers back and naming each
page's b-tree (SQLite's ``dbstat`` table) says where a commit's writes go.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import apsw

__all__ = ["pages_per_commit"]

_WAL_HEADER = 32
_FRAME_HEADER = 24
_OTHER = "(free list or file header)"


def pages_per_commit(path: Path, commit: Callable[[], object], commits: int) -> dict[str, float]:
    """Call ``commit`` ``commits`` times on the SQLite file at ``path`` (open in WAL
    mode elsewhere, idle between commits) and return the pages written per commit,
    by b-tree, most first. Keep ``commits`` times the pages of one commit below the
    file's auto-checkpoint size, or the log restarts on the way."""
    conn = apsw.Connection(str(path))
    try:
        conn.config(apsw.SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1)
        ((busy, _, _),) = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if busy:
            raise RuntimeError(f"{path}: the log could not be emptied (a reader holds it)")
        for _ in range(commits):
            commit()
        wal = Path(f"{path}-wal").read_bytes()
        owners = {page: name for name, page in conn.execute("SELECT name, pageno FROM dbstat")}
    finally:
        conn.close()
    if len(wal) < _WAL_HEADER:
        return {}  # nothing was written
    (page_size,) = struct.unpack(">I", wal[8:12])
    page_size = 65_536 if page_size == 1 else page_size  # the largest is written as 1
    salts = wal[16:24]
    counted: Counter[str] = Counter()
    for at in range(_WAL_HEADER, len(wal) - _FRAME_HEADER + 1, _FRAME_HEADER + page_size):
        if wal[at + 8 : at + 16] != salts:  # a frame left from before the log restarted
            break
        (page,) = struct.unpack(">I", wal[at : at + 4])
        counted[owners.get(page, _OTHER)] += 1
    return {name: round(n / commits, 2) for name, n in counted.most_common()}
