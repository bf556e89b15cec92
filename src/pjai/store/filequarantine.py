"""A store file's quarantined events, read without opening it as a store."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import apsw

from pjai.errors import StoreError
from pjai.schema.records import LogEntry
from pjai.store.damage import read_only
from pjai.store.log import EventLog
from pjai.store.sqlite import wait_when_busy

__all__ = ["FileQuarantine", "read_quarantine"]


@dataclass(frozen=True, slots=True)
class FileQuarantine:
    """What :func:`read_quarantine` found in a store file, as of one moment."""

    total: int = 0
    """Every quarantined event, reviewed or not."""
    after: int = 0
    """Those after the position asked for."""
    entries: list[LogEntry] = field(default_factory=list)
    """Those after it, oldest first, as many as asked for."""


def read_quarantine(path: Path, *, after: int = 0, limit: int = -1) -> FileQuarantine:
    """The quarantined events (:meth:`EventLog.quarantined`) in the store file at
    ``path``, read without opening it as a store and without changing it: for a process
    with the store off, whose file another process may still write. Nothing when there
    is no file; :class:`~pjai.errors.StoreError` when it cannot be read."""
    if not path.exists():
        return FileQuarantine()
    try:
        with read_only(path) as conn:
            wait_when_busy(conn)
            conn.execute("BEGIN")  # the counts and the entries of one moment
            log = EventLog(conn)
            return FileQuarantine(
                log.count_quarantined(),
                log.count_quarantined(after=after),
                log.quarantined(after=after, limit=limit),
            )
    except apsw.CantOpenError as exc:
        if not path.exists():  # removed meanwhile
            return FileQuarantine()
        problem: BaseException = exc
    except (apsw.Error, UnicodeDecodeError, ValueError) as exc:
        problem = exc
    raise StoreError(
        f"cannot read the quarantined events in the store file {path} ({problem}); "
        "`pjai doctor` with the store on checks the file"
    ) from problem
