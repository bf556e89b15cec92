"""Rebuilding a damaged store file: from its log, or from SQL's journal when the log is
damaged too.

The rebuilt store is written to a new file, so no damaged page is carried over; the
damaged file (with its ``-wal``) is kept beside it as ``store.db.damaged-<time>``. The
source is the store's own log when it reads whole, in one unbroken chain. Otherwise it
is SQL's journal (every event SQL holds, in global order) followed by whatever of the
log still reads in order after the journal's last event: events SQL had not received
yet, or a synced store's pending ones.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import apsw

from pjai.errors import StoreError
from pjai.files import fsync_path
from pjai.hybrid.files import OFF_CLAIMED, OFF_HEAD, UNSEEN
from pjai.schema.event import Schema
from pjai.schema.records import LogEntry
from pjai.schema.types import utc_now
from pjai.sql.shards import ShardSet
from pjai.sql.sqlite import journal_head
from pjai.store import Progress, Store
from pjai.store.damage import Salvage, read_only, salvage
from pjai.store.log import LOG_TABLE, META_TABLE

__all__ = [
    "RebuiltFrom",
    "SetAside",
    "StoreRebuilt",
    "finish_rebuild",
    "rebuild_store_file",
    "set_aside_damaged",
]

_SIDE_FILES = ("", "-wal", "-shm")


RebuiltFrom = Literal["log", "journal"]
"""What a side was rebuilt from: the store's event log, or SQL's journal."""


@dataclass(frozen=True, slots=True)
class StoreRebuilt:
    """How a damaged store file was rebuilt."""

    source: RebuiltFrom
    events: int
    """Events in the rebuilt log."""
    from_log: int
    """Of those, events taken from the damaged file's log."""
    damaged_copy: Path
    """Where the damaged file now lies."""
    problems: list[str] = field(default_factory=list)
    """What was found wrong with it."""


def rebuild_store_file(
    path: Path,
    *,
    shards: ShardSet,
    schema: Schema,
    sync: bool,
    client_id: str,
    problems: list[str],
    progress: Progress | None = None,
) -> StoreRebuilt:
    """Rebuild the store file at ``path`` in a new file; see the module doc."""
    found = salvage(path)
    if found.whole:
        source: RebuiltFrom = "log"
        entries = found.entries
        from_log = len(entries)
    else:
        source = "journal"
        problems = [*problems, found.problem or "the log cannot be read whole"]
        entries = _journal(shards)
        last = entries[-1].record.position.key if entries else (0, 0)
        start = next((i for i, e in enumerate(found.entries) if e.record.parent.key == last), None)
        tail = found.entries[start:] if start is not None else []
        entries = entries + tail
        from_log = len(tail)
    meta = dict(found.meta)
    meta.setdefault("client_id", client_id)
    fresh = path.with_name(f"{path.name}.rebuilt")
    _remove(fresh)
    with Store.open(fresh, schema=schema, sync=sync) as store:
        store.restore(Salvage(meta, entries, found.rejected), progress)
    damaged = _unused(path.with_name(f"{path.name}.damaged-{utc_now():%Y%m%dT%H%M%S}"))
    # The damaged file is kept under its new name before anything is removed, and the
    # swap is marked, so that a process stopped half-way leaves a file at ``path`` and
    # the next open finishes the swap (finish_rebuild): the path is never empty, where
    # an open would make a new, empty store.
    for suffix in ("", "-wal"):
        if Path(f"{path}{suffix}").exists():
            _keep(Path(f"{path}{suffix}"), Path(f"{damaged}{suffix}"))
    marker = _marker(path)
    marker.write_text(f"{fresh.name}\n")
    fsync_path(marker)
    _swap(path, fresh, marker)
    return StoreRebuilt(source, len(entries), from_log, damaged, problems)


@dataclass(frozen=True, slots=True)
class SetAside:
    """A damaged SQLite file of the SQL primary, moved out of the way to be made anew."""

    path: Path
    damaged_copy: Path
    problems: list[str]


def set_aside_damaged(path: Path, problems: list[str]) -> SetAside:
    """Move the damaged SQLite database at ``path`` (``problems``: what SQLite found)
    aside as ``<name>.damaged-<time>``.

    Its journals go first (a journal left beside a new file at ``path`` would be replayed
    into it), the file last: a process stopped on the way leaves either the damaged file
    in place or no file, which PJai makes anew and fills from the store.
    """
    damaged = _unused(path.with_name(f"{path.name}.damaged-{utc_now():%Y%m%dT%H%M%S}"))
    for suffix in ("-wal", "-journal", ""):
        if Path(f"{path}{suffix}").exists():
            os.replace(f"{path}{suffix}", f"{damaged}{suffix}")
    Path(f"{path}-shm").unlink(missing_ok=True)
    fsync_path(path.parent)
    return SetAside(path, damaged, problems)


def sql_beyond_store(store_path: Path, sql_files: list[Path]) -> str | None:
    """Why SQL's journal may hold events the store file at ``store_path`` lacks, which a
    rebuild of SQL from the store would lose; ``None`` when the store holds them all.

    The store file notes SQL's head after commits made with the store off
    (``OFF_HEAD``, and ``OFF_CLAIMED`` before SQL commits them) and whether it has ever
    taken SQL's journal in (``UNSEEN``); the journals of ``sql_files`` that still read
    say their own head.
    """
    try:
        with read_only(store_path) as conn:
            head = int(conn.execute(f"SELECT coalesce(max(global_seq), 0) FROM {LOG_TABLE}").get)
            meta = {str(k): str(v) for k, v in conn.execute(f"SELECT key, value FROM {META_TABLE}")}
    except apsw.Error as exc:
        return f"the store file {store_path} cannot be read ({exc})"
    if meta.get(UNSEEN):
        return "the store file has not taken SQL's journal in since it was made"
    if int(meta.get(OFF_HEAD) or 0) > head:
        return f"events up to e{meta[OFF_HEAD]} were committed with the store off"
    if int(meta.get(OFF_CLAIMED) or 0) > head:
        return (
            f"events up to e{meta[OFF_CLAIMED]} may have been committed with the store off "
            "(by a process stopped before it noted they were)"
        )
    for path in sql_files:
        journaled = journal_head(path)
        if journaled is not None and journaled > head:
            return f"{path.name}'s journal reaches e{journaled}, the store e{head}"
    return None


def finish_rebuild(path: Path) -> bool:
    """Finish the swap of a rebuild that was stopped half-way (before the store file at
    ``path`` is opened); whether there was one."""
    marker = _marker(path)
    if not marker.exists():
        return False
    _swap(path, path.with_name(f"{path.name}.rebuilt"), marker)
    return True


def _swap(path: Path, fresh: Path, marker: Path) -> None:
    """Put the rebuilt file in place: the old file's journals go first (SQLite would
    replay them onto the new file), then the file itself is replaced."""
    if fresh.exists():
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        os.replace(fresh, path)
        fsync_path(path.parent)
    marker.unlink(missing_ok=True)


def _marker(path: Path) -> Path:
    return path.with_name(f"{path.name}.rebuilding")


def _keep(source: Path, copy: Path) -> None:
    """``copy`` as a second name of ``source`` (or a copy where links are not possible)."""
    try:
        os.link(source, copy)
    except OSError:
        shutil.copyfile(source, copy)


def _unused(path: Path) -> Path:
    """``path``, or ``path-2``, ``path-3``... whichever does not exist yet."""
    candidate, n = path, 1
    while candidate.exists() or Path(f"{candidate}-wal").exists():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


def _journal(shards: ShardSet) -> list[LogEntry]:
    """Every event SQL holds, in global order, as confirmed log entries."""
    records = shards.journal()
    for parent, record in zip([None, *records], records, strict=False):
        expected = parent.position.key if parent is not None else (0, 0)
        if record.parent.key != expected:
            raise StoreError(
                f"SQL's journal breaks at e{record.position.global_seq}: the store cannot be "
                "rebuilt from it; restore the data directory from a backup"
            )
    return [LogEntry(record, "confirmed") for record in records]


def _remove(path: Path) -> None:
    for suffix in _SIDE_FILES:
        Path(f"{path}{suffix}").unlink(missing_ok=True)
