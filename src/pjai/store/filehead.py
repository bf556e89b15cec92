"""The store file's head, read and held under its write lock by a process without a
store open on it (the store switched off)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import apsw

from pjai.errors import StoreError
from pjai.store.log import EventLog
from pjai.store.sqlite import wait_when_busy

__all__ = ["FileHead", "LockedFile"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LockedFile:
    """What :meth:`FileHead.locked` read under the file's write lock: the last global
    position its log holds and its metadata (0 and none without a readable log)."""

    head: int = 0
    meta: dict[str, str] = field(default_factory=dict)


class FileHead:
    """The last global position the store file at ``path`` logged, read under the file's
    write lock, on one connection kept open (opened again when the file is replaced).

    A process with the store off holds the lock while it writes to SQL (:meth:`locked`),
    as a process with the store on holds it while its commit reaches SQL, and notes the
    places it takes in the file before SQL commits them (:meth:`note_now`): the two never
    give one position to two events, even when a process is killed between its commits
    to the two. 0, and no lock, when there is no file or it cannot be read as a database
    (a damaged store is switched off and rebuilt from SQL's journal); a file that cannot
    be locked otherwise is an error.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: apsw.Connection | None = None
        self._inode = 0

    @contextmanager
    def locked(
        self, note: Callable[[dict[str, str]], dict[str, str]] | None = None
    ) -> Iterator[LockedFile]:
        """The file's head and metadata, with its write lock held for the block (unless
        another writer took it at :meth:`note_now`). When the block ends without an
        error, ``note(meta)``'s entries are written into the file's metadata under the
        lock, ``meta`` being the metadata as it stands then (a file without a log keeps
        none); where another writer took the lock, only if it is free at once: that
        writer's turn is not held up for a note, and what had to stand was noted now."""
        try:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
        except apsw.BusyError as exc:
            raise StoreError(
                f"the store file {self.path} stayed locked by another process: commit again"
            ) from exc
        except (FileNotFoundError, apsw.CorruptError, apsw.NotADBError):
            self.close()
            yield LockedFile()
            return
        except (OSError, apsw.Error) as exc:  # not to be skipped: it may hold events
            self.close()
            raise StoreError(f"cannot lock the store file {self.path}: {exc}") from exc
        log = EventLog(conn)
        try:
            try:
                head = log.head().global_seq
            except apsw.Error:
                head = 0
            try:
                meta = log.meta()
            except apsw.Error:
                meta = {}
            yield LockedFile(head, meta)
            if note is not None:
                try:
                    if conn.get_autocommit() and not _lock_if_free(conn):  # taken meanwhile
                        _log.debug("%s is locked by another writer: no note", self.path)
                        return
                    if log.exists():
                        log.set_meta(**note(log.meta()))
                        conn.execute("COMMIT")
                except apsw.Error as exc:
                    # What the block did stands (it wrote elsewhere): only the note is
                    # lost, which the caller must not take for a failure of its own.
                    _log.warning("could not note %s in %s: %s", sorted(note(meta)), self.path, exc)
        finally:
            if not conn.get_autocommit():
                conn.execute("ROLLBACK")

    def note_now(self, **values: str) -> None:
        """Within :meth:`locked`'s block: write ``values`` into the file's metadata and
        commit them, so that they stand whatever happens next, then take the write lock
        again if it is free at once, to keep the turn as the block would have (another
        writer may take it in that instant: it is not waited for). Where they cannot be
        written, that is logged (the caller's work does not depend on the file); outside
        the block, nothing happens."""
        conn = self._conn
        if conn is None or conn.get_autocommit():
            return
        try:
            log = EventLog(conn)
            if log.exists():
                log.set_meta(**values)
            conn.execute("COMMIT")
            _lock_if_free(conn)
        except apsw.Error as exc:
            _log.warning("could not note %s in %s: %s", sorted(values), self.path, exc)
            if not conn.get_autocommit():
                conn.execute("ROLLBACK")

    def _connection(self) -> apsw.Connection:
        inode = self.path.stat().st_ino
        if self._conn is None or inode != self._inode:
            self.close()
            self._conn = apsw.Connection(str(self.path), flags=apsw.SQLITE_OPEN_READWRITE)
            self._conn.config(apsw.SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1)
            # As the store's own commits by default: a note survives the process, which
            # is what a store-off commit's claim guards against (a kill between SQL's
            # commit and the note), without an fsync of its own on every commit.
            self._conn.execute("PRAGMA synchronous=NORMAL")
            wait_when_busy(self._conn)
            self._inode = inode
        return self._conn

    def close(self) -> None:
        """Close the connection, if open."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _lock_if_free(conn: apsw.Connection) -> bool:
    """Begin a write transaction on ``conn`` if no other connection holds the file's
    write lock now, without waiting for one that does; whether it began."""
    conn.set_busy_handler(None)
    try:
        conn.execute("BEGIN IMMEDIATE")
    except apsw.BusyError:
        return False
    finally:
        wait_when_busy(conn)
    return True
