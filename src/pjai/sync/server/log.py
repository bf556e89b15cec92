"""The sync server's event log: one total order of events per store id.

:class:`ServerLog` is the port the server's sessions use; :class:`MemoryLog` keeps it
in memory (tests), :class:`~pjai.sync.server.sqllog.SqlLog` in SQLite or PostgreSQL. A log
appends a batch only when its first event's parent is the store's head, and never
renumbers an event. Given ``max_store_bytes``, a log appends no batch that would take a
store's records (each counted as logged: :func:`record_bytes`) past it, so that no
token holder can fill the server's disk, nor every device's that pulls the store.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import msgspec

from pjai.errors import PjaiError
from pjai.schema.records import ROOT, EventRecord, Position

__all__ = [
    "DEFAULT_MAX_STORE_BYTES",
    "Appended",
    "DuplicateEventError",
    "MemoryLog",
    "OverQuota",
    "ServerAhead",
    "ServerLog",
    "record_bytes",
]

DEFAULT_MAX_STORE_BYTES = 4 * 1024**3
"""The bytes of records a store's log holds at most, unless the server is told otherwise
(``pjai sync-server serve --max-store-bytes``)."""

record_bytes = msgspec.json.Encoder().encode
"""A record as a log keeps it (msgspec JSON): its length is what it counts for."""


class DuplicateEventError(PjaiError):
    """A pushed event has the id of an event already in the store's log elsewhere."""

    def __init__(self, event_id: str) -> None:
        super().__init__(f"event {event_id} is already in this store's log at another position")
        self.event_id = event_id


@dataclass(frozen=True, slots=True)
class Appended:
    """The batch is in the log (``count`` 0: it already was, a repeated push)."""

    head: Position
    count: int


@dataclass(frozen=True, slots=True)
class ServerAhead:
    """The batch was not appended: the store's head is not its first event's parent."""

    head: Position


@dataclass(frozen=True, slots=True)
class OverQuota:
    """The batch was not appended: the store's records (``held`` bytes) and the batch's
    would pass the log's ``limit``."""

    held: int
    limit: int


class ServerLog(Protocol):
    """Where a sync server keeps each store's events."""

    backend_id: str
    """Identifies this log's storage; a new id means the server's history was reset."""

    def head(self, store_id: str) -> Position:
        """The position of the store's last event (``ROOT`` for an empty store)."""
        ...

    def append(
        self, store_id: str, records: Sequence[EventRecord]
    ) -> Appended | ServerAhead | OverQuota:
        """Append ``records`` (a chain from the head) atomically, or say where the head is,
        or that they would pass the store's quota.

        Raises :class:`DuplicateEventError`, appending nothing, when one of them has the
        id of an event already logged (other than a repeat of the same push).
        """
        ...

    def behind(
        self, store_id: str, records: Sequence[EventRecord]
    ) -> Appended | ServerAhead | None:
        """What :meth:`append` would answer a push whose parent is behind a head already
        seen (a repeat of a push already in, or one that lost the race), when that is
        known without writing; ``None`` otherwise. Sessions ask before checking a push's
        events, so that the many pushes that lose a race cost little."""
        ...

    def read(self, store_id: str, after: Position, limit: int) -> list[EventRecord]:
        """Up to ``limit`` events after ``after``, in order; a backend may return fewer
        when they are large (:data:`~pjai.sync.server.sqllog.PAGE_BYTES`), but at least
        one when there is one: only the head says whether more follow."""
        ...

    def refresh(self, store_id: str) -> Position:
        """Catch up with events other processes appended; returns the head."""
        ...

    def forget(self, store_id: str) -> None:
        """Nobody in this process watches the store now: drop what is kept for it."""
        ...


class MemoryLog:
    """A :class:`ServerLog` in memory."""

    def __init__(self, max_store_bytes: int | None = None) -> None:
        self.backend_id = str(uuid.uuid4())
        self.max_store_bytes = max_store_bytes
        self._events: dict[str, list[EventRecord]] = {}
        self._ids: dict[str, set[str]] = {}
        self._bytes: dict[str, int] = {}
        self._lock = threading.Lock()

    def head(self, store_id: str) -> Position:
        events = self._events.get(store_id)
        return events[-1].position if events else ROOT

    def behind(
        self, store_id: str, records: Sequence[EventRecord]
    ) -> Appended | ServerAhead | None:
        with self._lock:
            head = self.head(store_id)
            if records[0].parent.global_seq >= head.global_seq:
                return None
        answer = self.append(store_id, records)
        assert not isinstance(answer, OverQuota)  # a push behind the head takes no room
        return answer

    def append(
        self, store_id: str, records: Sequence[EventRecord]
    ) -> Appended | ServerAhead | OverQuota:
        with self._lock:
            events = self._events.setdefault(store_id, [])
            head = events[-1].position if events else ROOT
            first = records[0]
            if first.parent.key != head.key:
                seq = first.position.global_seq
                if 0 < seq <= len(events) and events[seq - 1].id == first.id:
                    return Appended(head, 0)
                return ServerAhead(head)
            ids = self._ids.setdefault(store_id, set())
            batch: set[str] = set()
            for record in records:
                if record.id in ids or record.id in batch:
                    raise DuplicateEventError(record.id)
                batch.add(record.id)
            held = self._bytes.get(store_id, 0)
            size = sum(len(record_bytes(r)) for r in records)
            if self.max_store_bytes is not None and held + size > self.max_store_bytes:
                return OverQuota(held, self.max_store_bytes)
            events.extend(records)
            ids |= batch
            self._bytes[store_id] = held + size
            return Appended(records[-1].position, len(records))

    def read(self, store_id: str, after: Position, limit: int) -> list[EventRecord]:
        events = self._events.get(store_id, [])
        return events[after.global_seq : after.global_seq + limit]

    def refresh(self, store_id: str) -> Position:
        return self.head(store_id)

    def forget(self, store_id: str) -> None:
        pass  # the memory log is the storage itself
