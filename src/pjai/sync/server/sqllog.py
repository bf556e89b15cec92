"""The sync server's log in SQLite or PostgreSQL (SQLAlchemy Core).

Per store, one row in ``pjai_sync_heads`` holds the head. A push appends only if it
moves that row from the batch's parent to its last position (a compare-and-set), so
stores are sequenced independently and concurrent pushes to one store serialise on
that row alone, across any number of server processes. On PostgreSQL each append
also sends ``NOTIFY pjai_sync, '<instance>\t<store id>'``, a wake-up hint for other
processes (each ignores its own).

Recent events of each store are kept in memory, so that the pullers of one process
read them without a query each; :meth:`SqlLog.refresh` brings that cache up to date
with what other processes appended. The cache has bounds per store and one for the
whole process (:data:`CACHE_BUDGET`), counted in the memory its records take
(:func:`~pjai.sync.server.recent.cached_size`), so that no number of stores, nor size
of events, makes it grow without bound.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from pjai.schema.records import EventRecord, Position
from pjai.sql.backend import backend_for
from pjai.sync.protocol import MAX_FRAME_BYTES
from pjai.sync.server.log import (
    Appended,
    DuplicateEventError,
    OverQuota,
    ServerAhead,
    record_bytes,
)
from pjai.sync.server.recent import Recent, cached_size
from pjai.sync.server.tables import create_tables, events, heads, meta, transaction

__all__ = [
    "CACHED_BYTES",
    "CACHED_EVENTS",
    "CACHE_BUDGET",
    "NOTIFY_CHANNEL",
    "PAGE_BYTES",
    "SqlLog",
    "cached_size",
]

NOTIFY_CHANNEL = "pjai_sync"
CACHED_EVENTS = 20_000
"""Events per store kept in memory, at most."""
CACHED_BYTES = 32 * 1024 * 1024
"""Memory the cached events of one store take, at most (:func:`cached_size`): room for
:data:`CACHED_EVENTS` events of up to 1.6 KiB each, or ten of the largest. Older events
are read from the database."""
CACHE_BUDGET = 256 * 1024 * 1024
"""Memory the cached events of all stores take together, at most: past it, the store
used longest ago loses its oldest events first (its pullers, at the head, need only the
newest)."""
PAGE_BYTES = MAX_FRAME_BYTES
"""Bytes of records one read from the database takes, at most (and at least one record,
which may pass it): a page fills a frame, and a store of large events is not read a
thousand at a time (3 GiB)."""

_APPEND_AT_ONCE = sa.text(
    "WITH moved AS ("
    " UPDATE pjai_sync_heads SET seq = :last, bytes = bytes + :size"
    " WHERE store_id = :store_id AND seq = :parent AND bytes + :size <= :limit RETURNING seq"
    "), inserted AS ("
    " INSERT INTO pjai_sync_events (store_id, seq, event_id, record)"
    " SELECT :store_id, seq, event_id, record FROM unnest("
    "  CAST(:seqs AS BIGINT[]), CAST(:ids AS VARCHAR[]), CAST(:records AS BYTEA[])"
    " ) AS pushed (seq, event_id, record)"
    " WHERE EXISTS (SELECT 1 FROM moved) RETURNING 1"
    ") SELECT (SELECT count(*) FROM inserted), (SELECT pg_notify(:channel, :note) FROM moved)"
)
"""A push in one round trip when the head is its parent and the store has room for it:
the compare-and-set of the head (and the store's bytes), the events (arrays, not one
INSERT each) and the NOTIFY; nothing if the head moved on or the quota would pass."""

_ADVANCE = sa.text(
    "UPDATE pjai_sync_heads SET seq = :last, bytes = bytes + :size"
    " WHERE store_id = :store_id AND seq = :parent AND bytes + :size <= :limit"
)
"""SQLite: the compare-and-set of the head and the store's bytes (a statement made once:
building it anew for each push costs more than the update)."""

_NO_LIMIT = 2**62
"""The limit a log without ``max_store_bytes`` checks against (and the highest it checks
against: SQLite's integers end at 2**63): none is reached."""

_INSERT_SQLITE = (
    "INSERT INTO pjai_sync_events (store_id, seq, event_id, record) VALUES (?, ?, ?, ?)"
)

_encode = record_bytes
_decode = msgspec.json.Decoder(EventRecord).decode


class SqlLog:
    """A :class:`~pjai.sync.server.log.ServerLog` in the database of ``engine``
    (:mod:`pjai.sync.server.tables`, created if missing), holding at most
    ``max_store_bytes`` of records a store (``None``: no limit)."""

    def __init__(self, engine: sa.Engine, max_store_bytes: int | None = None) -> None:
        self.engine = engine
        self.max_store_bytes = max_store_bytes
        self._backend = backend_for(engine)
        self._postgres = engine.dialect.name == "postgresql"
        self._recent: dict[str, Recent] = {}
        self._used: OrderedDict[str, Recent] = OrderedDict()
        """The stores with cached events, the one used longest ago first."""
        self.cached_bytes = 0
        """The memory the cached events of all stores take (:func:`cached_size`)."""
        self._lock = threading.Lock()
        self._write_lock = contextlib.nullcontext() if self._postgres else threading.Lock()
        self.instance = uuid.uuid4().hex
        """Names this process in its notifications (``instance<TAB>store_id``)."""
        with self._writing("creating the sync tables") as conn:
            create_tables(conn)
            found = conn.scalar(sa.select(meta.c.value).where(meta.c.key == "backend_id"))
            if found is None:
                found = str(uuid.uuid4())
                conn.execute(self._insert_ignore(meta).values(key="backend_id", value=found))
                found = conn.scalar(sa.select(meta.c.value).where(meta.c.key == "backend_id"))
        self.backend_id: str = str(found)

    # -- the port --------------------------------------------------------------------

    def head(self, store_id: str) -> Position:
        with self._reading("reading a sync head") as conn:
            seq = conn.scalar(sa.select(heads.c.seq).where(heads.c.store_id == store_id))
        return Position(seq or 0)

    def append(
        self, store_id: str, records: Sequence[EventRecord]
    ) -> Appended | ServerAhead | OverQuota:
        ids = [r.id for r in records]
        if len(set(ids)) != len(ids):
            raise DuplicateEventError(next(i for n, i in enumerate(ids) if i in ids[:n]))
        if (known := self.behind(store_id, records)) is not None:
            return known
        first = records[0].parent.global_seq == 0
        encoded = [_encode(r) for r in records]
        size = sum(map(len, encoded))
        if self._postgres:
            moved = self._append_at_once(store_id, records, encoded, size)
            if not moved and first:  # maybe the store's first push: it needs a head row
                with self._writing("creating a sync head") as conn:
                    conn.execute(self._insert_ignore(heads).values(store_id=store_id, seq=0))
                moved = self._append_at_once(store_id, records, encoded, size)
            if not moved:
                with self._reading("reading a sync head") as conn:
                    return self._not_appended(conn, store_id, records)
        else:
            moving = self._moving(store_id, records, size)
            with self._writing("appending to the sync log") as conn:
                done = conn.execute(_ADVANCE, moving).rowcount == 1
                if not done and first:  # maybe the store's first push: it needs a head row
                    conn.execute(self._insert_ignore(heads).values(store_id=store_id, seq=0))
                    done = conn.execute(_ADVANCE, moving).rowcount == 1
                if not done:
                    return self._not_appended(conn, store_id, records)
                if (taken := self._taken(conn, store_id, ids)) is not None:
                    raise DuplicateEventError(taken)  # the transaction rolls back
                # The driver's executemany: SQLAlchemy's per-row parameter work would
                # cost more than SQLite's insert itself.
                rows = [
                    (store_id, r.position.global_seq, r.id, record)
                    for r, record in zip(records, encoded, strict=True)
                ]
                conn.exec_driver_sql(_INSERT_SQLITE, rows)
        self._remember(store_id, records)
        return Appended(records[-1].position, len(records))

    def read(self, store_id: str, after: Position, limit: int) -> list[EventRecord]:
        with self._lock:
            recent = self._recent.get(store_id)
            if recent is not None and after.global_seq >= recent.start:
                if store_id in self._used:
                    self._used.move_to_end(store_id)
                begin = after.global_seq - recent.start
                return recent.records[begin : begin + limit]
        return self._query(store_id, after.global_seq, limit)[0]

    def refresh(self, store_id: str) -> Position:
        with self._lock:
            recent = self._recent.get(store_id)
            if recent is None:
                recent = self._recent[store_id] = Recent(self.head(store_id).global_seq)
                return Position(recent.head)
            after = recent.head
        while True:
            newer, more = self._query(store_id, after, CACHED_EVENTS)
            with self._lock:
                # Keep what another refresh or an append added meanwhile; take the rest.
                skip = recent.head - after
                if 0 <= skip < len(newer):
                    self._extend(store_id, recent, newer[skip:])
                head = recent.head
            if not more:
                return Position(head)
            after = head  # far behind: read on until the database's head

    def forget(self, store_id: str) -> None:
        """Drop the store's cached events (nobody in this process watches it now)."""
        with self._lock:
            recent = self._recent.pop(store_id, None)
            if recent is not None and self._used.pop(store_id, None) is not None:
                self.cached_bytes -= recent.size

    # -- helpers -----------------------------------------------------------------

    def stores(self) -> dict[str, int]:
        """Every store's head sequence number."""
        with self._reading("listing sync stores") as conn:
            return {
                str(s): int(q) for s, q in conn.execute(sa.select(heads.c.store_id, heads.c.seq))
            }

    def _query(self, store_id: str, after: int, limit: int) -> tuple[list[EventRecord], bool]:
        """Up to ``limit`` events after ``after``, in order, of at most
        :data:`PAGE_BYTES` (at least one); and whether more may follow them.

        The records' sizes are read first, then only the records that fit: a page of
        large events is never read whole into memory."""
        where = (events.c.store_id == store_id, events.c.seq > after)
        sizes = (
            sa.select(events.c.seq, sa.func.length(events.c.record))
            .where(*where)
            .order_by(events.c.seq)
            .limit(limit)
        )
        with self._reading("reading the sync log") as conn:
            found = conn.execute(sizes).all()
            count = total = 0
            for _, size in found:
                if count and total + size > PAGE_BYTES:
                    break
                count, total = count + 1, total + size
            if not count:
                return [], False
            query = (
                sa.select(events.c.record)
                .where(*where, events.c.seq <= found[count - 1][0])
                .order_by(events.c.seq)
            )
            page = [_decode(bytes(blob)) for (blob,) in conn.execute(query)]
        return page, count < len(found) or len(found) == limit

    def _remember(self, store_id: str, records: Sequence[EventRecord]) -> None:
        with self._lock:
            recent = self._recent.get(store_id)
            if recent is None or recent.head >= records[-1].position.global_seq:
                return
            if recent.head + 1 == records[0].position.global_seq:
                self._extend(store_id, recent, records)
                return
        # Another process appended in between: read the gap, so that the cache reaches
        # the head this append announces to the pullers.
        self.refresh(store_id)

    def _extend(self, store_id: str, recent: Recent, records: Sequence[EventRecord]) -> None:
        """Cache ``records`` after ``recent``'s; then drop the oldest events until the
        store's bounds and the process's budget hold (under the lock)."""
        size = recent.size
        recent.add(records)
        # The oldest go first, until both the count and the bytes are within bounds.
        recent.drop(max(0, len(recent.records) - CACHED_EVENTS), recent.size - CACHED_BYTES)
        if self._recent.get(store_id) is not recent:
            return  # forgotten meanwhile (a refresh's): it counts for nothing now
        self.cached_bytes += recent.size - size
        if recent.records:
            self._used[store_id] = recent
            self._used.move_to_end(store_id)
        else:
            self._used.pop(store_id, None)
        while self.cached_bytes > CACHE_BUDGET and self._used:
            oldest_id, oldest = next(iter(self._used.items()))
            size = oldest.size
            oldest.drop(0, self.cached_bytes - CACHE_BUDGET)
            self.cached_bytes -= size - oldest.size
            if not oldest.records:
                del self._used[oldest_id]

    def _moving(self, store_id: str, records: Sequence[EventRecord], size: int) -> dict[str, Any]:
        """The parameters of the compare-and-set of the store's head and bytes."""
        return {
            "store_id": store_id,
            "parent": records[0].parent.global_seq,
            "last": records[-1].position.global_seq,
            "size": size,
            "limit": self._limit,
        }

    @property
    def _limit(self) -> int:
        return _NO_LIMIT if self.max_store_bytes is None else min(self.max_store_bytes, _NO_LIMIT)

    def _append_at_once(
        self, store_id: str, records: Sequence[EventRecord], encoded: list[bytes], size: int
    ) -> bool:
        """PostgreSQL: move the head and append in one autocommitted statement, if the head
        is the batch's parent and the store has room for its ``size`` bytes; whether it
        was. A logged id fails it as a whole."""
        pushed = {
            **self._moving(store_id, records, size),
            "seqs": [r.position.global_seq for r in records],
            "ids": [r.id for r in records],
            "records": encoded,
            "channel": NOTIFY_CHANNEL,
            "note": f"{self.instance}\t{store_id}",
        }
        try:
            with self.engine.connect() as conn:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                inserted = conn.scalar(_APPEND_AT_ONCE, pushed)
        except sa.exc.IntegrityError:  # an id already logged: the statement did nothing
            with self._reading("finding a repeated event id") as conn:
                taken = self._taken(conn, store_id, [r.id for r in records])
            raise DuplicateEventError(taken or records[0].id) from None
        except sa.exc.DBAPIError as exc:
            raise self._backend.translate(exc, "appending to the sync log") from exc
        return int(inserted) == len(records)

    def behind(
        self, store_id: str, records: Sequence[EventRecord]
    ) -> Appended | ServerAhead | None:
        """The answer to a push whose parent is behind a head this process has seen,
        from the cached events alone, or ``None`` when only the database can tell.

        Heads only move forward, so such a push cannot be appended: it is a repeat of a
        push already in (its first event holds its place) or it lost the race. Many
        clients pushing to one store mostly lose; answering them here keeps them out of
        the write transaction that the winners queue for.
        """
        seq = records[0].position.global_seq
        with self._lock:
            recent = self._recent.get(store_id)
            if recent is None or records[0].parent.global_seq >= recent.head:
                return None
            if not recent.start < seq <= recent.head:
                return None
            there = recent.records[seq - recent.start - 1].id
            head = Position(recent.head)
        return Appended(head, 0) if there == records[0].id else ServerAhead(head)

    def _not_appended(
        self, conn: sa.Connection, store_id: str, records: Sequence[EventRecord]
    ) -> Appended | ServerAhead | OverQuota:
        """The head was not the batch's parent (a repeat of a push already in, or behind),
        or the store had no room for it."""
        row = conn.execute(
            sa.select(heads.c.seq, heads.c.bytes).where(heads.c.store_id == store_id)
        ).first()
        head = Position(row.seq if row is not None else 0)
        if row is not None and row.seq == records[0].parent.global_seq:
            return OverQuota(int(row.bytes), self._limit)
        there = conn.scalar(
            sa.select(events.c.event_id).where(
                events.c.store_id == store_id, events.c.seq == records[0].position.global_seq
            )
        )
        return Appended(head, 0) if there == records[0].id else ServerAhead(head)

    @staticmethod
    def _taken(conn: sa.Connection, store_id: str, ids: Sequence[str]) -> str | None:
        """One of ``ids`` already in the store's log, if any."""
        return conn.scalar(
            sa.select(events.c.event_id)
            .where(events.c.store_id == store_id, events.c.event_id.in_(ids))
            .limit(1)
        )

    def _insert_ignore(self, table: sa.Table) -> sa.Insert:
        if self._postgres:
            return postgresql.insert(table).on_conflict_do_nothing()
        return sqlite.insert(table).on_conflict_do_nothing()

    @contextmanager
    def _writing(self, doing: str) -> Iterator[sa.Connection]:
        # SQLite takes one writer at a time: queue here rather than in its busy handler,
        # which sleeps instead of waking when the lock frees.
        with self._write_lock, transaction(self.engine, doing, write=True) as conn:
            yield conn

    @contextmanager
    def _reading(self, doing: str) -> Iterator[sa.Connection]:
        with transaction(self.engine, doing) as conn:
            yield conn
