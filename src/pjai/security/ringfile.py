"""The key ring's open file: one connection that threads share one call at a time, its
transactions, and the keys held in memory, forgotten when another process changes the
file (:class:`RingFile`, the base of :class:`~pjai.security.keys.KeyRing`)."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import apsw

from pjai.errors import KeyRingError
from pjai.resource import Resource

__all__ = ["FRESH_S", "RingFile", "locked", "nullable_text"]

FRESH_S = 0.5
"""How often the ring looks for changes other processes made to its file."""

T = TypeVar("T")


def nullable_text(value: object) -> str | None:
    """A nullable text column's value."""
    return None if value is None else str(value)


def locked(method: Callable[..., T]) -> Callable[..., T]:
    """Run ``method`` under the ring's lock: one thread at a time on its connection. A
    file found damaged on the way (a page that does not read, text that is not text) is
    a :class:`~pjai.errors.KeyRingError` that says so."""

    @functools.wraps(method)
    def run(self: RingFile, *args: Any, **kwargs: Any) -> T:
        with self._guard():
            return method(self, *args, **kwargs)

    return run


class RingFile(Resource):
    """The open file of a key ring unlocked with ``store_key`` (see the module); what
    the ring does with it is its subclasses'."""

    def __init__(self, conn: apsw.Connection, path: Path, store_key: bytes) -> None:
        self._conn = conn
        self.path = path
        self._store_key = store_key
        self._cache: dict[str, bytes] = {}
        self._scopes: dict[str, str] = {}
        """The scope of each key read so far (bound to it: it never changes)."""
        self._current: dict[str, tuple[str, dict[str, str] | None]] = {}
        """By scope, the current key's id, and, where the persona written for decides
        the key (:meth:`~pjai.security.datakeys.DataKeys.current`: the scope holds keys
        of more than one lineage, or erased some), the key chosen for each creation key
        so far."""
        self._lock = threading.RLock()
        self._version = self._data_version()
        self._looked = time.monotonic()

    @locked
    def close(self) -> None:
        """Close the file and forget the keys held in memory."""
        self._cache.clear()
        self._scopes.clear()
        self._current.clear()
        self._conn.close()

    def _data_version(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").get)

    def _follow_others(self) -> None:
        """Forget the keys in memory if another process changed the file since."""
        now = time.monotonic()
        if now - self._looked < FRESH_S:
            return
        self._looked = now
        version = self._data_version()
        if version != self._version:
            self._version = version
            self._cache.clear()
            self._current.clear()

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """The ring's lock, held by every use of its connection (:func:`locked`)."""
        with self._lock:
            try:
                yield
            except (apsw.CorruptError, apsw.NotADBError, UnicodeDecodeError) as exc:
                raise KeyRingError(
                    f"{self.path} is damaged ({exc}): restore it from a backup"
                ) from exc

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._conn:
            yield

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """A transaction that holds the file's write lock from its start: what it reads
        no other process changes before it commits."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
