"""The SQL primary's journal of applied events and its projection checkpoints.

The journal holds every event the SQL side applied (or quarantined), with the same
fields as the store's log, so it is an audit trail of its own and the log the store
catches up from after running without it. The checkpoint row of a projection says how
far in global order it has applied events; it moves in the same transaction as the
rows it covers, which with the unique event id makes projection exactly-once.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Index,
    Integer,
    MetaData,
    Table,
    func,
    select,
)

from pjai.schema.expressions import in_parts
from pjai.schema.ops import Greatest, Insert, Missing, Op, Update
from pjai.schema.records import EventRecord, Position, args_text
from pjai.schema.tables import NAMING_CONVENTION
from pjai.schema.types import CodePointString, CodePointText, Timestamp

__all__ = [
    "APPLIED",
    "QUARANTINED",
    "REVIEWED",
    "JournalHistory",
    "checkpoint_op",
    "checkpoints",
    "journal",
    "journal_entries",
    "journal_metadata",
    "journal_op",
]

APPLIED = "applied"
QUARANTINED = "quarantined"
REVIEWED = "quarantine_reviewed"
"""The checkpoint row marking how far an operator has reviewed quarantined events: those
at or before its position were acknowledged (the first shard keeps it)."""

journal_metadata = MetaData(naming_convention=NAMING_CONVENTION)

journal = Table(
    "pjai_journal",
    journal_metadata,
    Column("event_id", CodePointString, primary_key=True),
    Column("global_seq", BigInteger, nullable=False),
    Column("client_seq", Integer, nullable=False),
    Column("generation", Integer, nullable=False),
    Column("parent_global_seq", BigInteger, nullable=False),
    Column("parent_client_seq", Integer, nullable=False),
    Column("name", CodePointString, nullable=False),
    Column("args", CodePointText, nullable=False),
    Column("client_id", CodePointString, nullable=False),
    Column("session_id", CodePointString, nullable=False),
    Column("at", Timestamp, nullable=False),
    Column("persona_id", CodePointString),
    Column("status", CodePointString, nullable=False),
    Column("error", CodePointText),
    Column("recorded_at", Timestamp, nullable=False),
    # One event per position: a second event at a taken position is refused outright.
    Index(None, "global_seq", unique=True),
    Index(None, "persona_id"),
    # The events of a few names (the erasures, read on opening a directory) are found
    # without reading the whole journal.
    Index(None, "name", "global_seq"),
)

checkpoints = Table(
    "pjai_checkpoint",
    journal_metadata,
    Column("projection", CodePointString, primary_key=True),
    Column("global_seq", BigInteger, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)


def journal_op(
    record: EventRecord, persona_id: str | None, status: str, error: str | None, now: datetime
) -> Op:
    """The insert that journals ``record``."""
    position, parent = record.position, record.parent
    return Insert(
        "pjai_journal",
        {
            "event_id": record.id,
            "global_seq": position.global_seq,
            "client_seq": position.client_seq,
            "generation": position.generation,
            "parent_global_seq": parent.global_seq,
            "parent_client_seq": parent.client_seq,
            "name": record.name,
            "args": args_text(record),
            "client_id": record.client_id,
            "session_id": record.session_id,
            "at": record.at,
            "persona_id": persona_id,
            "status": status,
            "error": error,
            "recorded_at": now,
        },
    )


def checkpoint_op(
    projection: str, global_seq: int, now: datetime, *, follows: int | None = None
) -> Op:
    """The update that moves ``projection``'s checkpoint to ``global_seq``; with
    ``follows``, only from there (it then matches no row when the checkpoint is
    elsewhere)."""
    if follows is not None:
        return Update(
            "pjai_checkpoint",
            {"projection": projection, "global_seq": follows},
            {"global_seq": global_seq, "updated_at": now},
            missing=Missing(None, "the checkpoint is not at e{}", (follows,)),
        )
    # Greatest: a checkpoint only moves forward, even if another writer moved it first.
    return Update(
        "pjai_checkpoint",
        {"projection": projection},
        {"global_seq": Greatest(global_seq), "updated_at": now},
    )


def ensure_checkpoint(
    conn: Connection, projection: str, now: datetime, *, lock: bool = False
) -> int:
    """The projection's checkpoint, creating it at 0 if missing.

    ``lock`` holds the checkpoint row until the transaction ends (``FOR UPDATE`` on
    PostgreSQL; SQLite write transactions already hold the whole database), so that
    writers taking the next positions from it take turns.
    """
    query = select(checkpoints.c.global_seq).where(checkpoints.c.projection == projection)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    found = conn.execute(query).scalar_one_or_none()
    if found is not None:
        return int(found)
    insert = _insert_ignoring_duplicates(conn.dialect.name)
    conn.execute(insert.values(projection=projection, global_seq=0, updated_at=now))
    return int(conn.execute(query).scalar_one())


def review(conn: Connection, global_seq: int, now: datetime) -> None:
    """Mark quarantined events up to ``global_seq`` as reviewed (it never moves back)."""
    _set_checkpoint(conn, REVIEWED, global_seq, now, forward_only=True)


def reviewed(conn: Connection) -> int:
    """How far quarantined events were reviewed (0: none were)."""
    query = select(checkpoints.c.global_seq).where(checkpoints.c.projection == REVIEWED)
    return int(conn.execute(query).scalar_one_or_none() or 0)


_PLACE, _OF = "pjai_shard_place", "pjai_shard_count"
"""The rows of the checkpoint table that say which place the database has in its shard
list, and how long the list is."""


def shard_place(conn: Connection) -> tuple[int, int] | None:
    """The place this database had in its shard list, and the list's length, when it
    was last opened or rebalanced (``None`` before it ever was)."""
    rows = conn.execute(
        select(checkpoints.c.projection, checkpoints.c.global_seq).where(
            checkpoints.c.projection.in_((_PLACE, _OF))
        )
    ).all()
    found = {row.projection: int(row.global_seq) for row in rows}
    return (found[_PLACE], found[_OF]) if len(found) == 2 else None


def set_shard_place(conn: Connection, place: int, count: int, now: datetime) -> None:
    """Record this database's place in its shard list and the list's length."""
    for name, value in ((_PLACE, place), (_OF, count)):
        _set_checkpoint(conn, name, value, now)


def _set_checkpoint(
    conn: Connection, projection: str, global_seq: int, now: datetime, *, forward_only: bool = False
) -> None:
    """Set the checkpoint row ``projection`` (made if missing) to ``global_seq``; with
    ``forward_only``, only if that is past where it is."""
    ensure_checkpoint(conn, projection, now)
    query = checkpoints.update().where(checkpoints.c.projection == projection)
    if forward_only:
        query = query.where(checkpoints.c.global_seq < global_seq)
    conn.execute(query.values(global_seq=global_seq, updated_at=now))


def _insert_ignoring_duplicates(dialect: str) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(checkpoints).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(checkpoints).on_conflict_do_nothing()


def applied_ids(conn: Connection, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` the journal already holds."""
    found: set[str] = set()
    for chunk in in_parts(list(ids), 500):
        found.update(
            conn.execute(select(journal.c.event_id).where(journal.c.event_id.in_(chunk))).scalars()
        )
    return found


def event_at(conn: Connection, global_seq: int) -> str | None:
    """The id of the event journaled at ``global_seq``, if any."""
    query = select(journal.c.event_id).where(journal.c.global_seq == global_seq)
    found = conn.execute(query).scalar()
    return None if found is None else str(found)


class JournalHistory:
    """The events applied on ``conns`` (a connection per shard) as the
    :class:`~pjai.schema.codec.History` a commit made straight to SQL follows (the store
    off): its codec finds there which persona of an id given again it seals for."""

    def __init__(self, conns: Sequence[Connection]) -> None:
        self._conns = conns

    def last(self, names: Collection[str], persona_id: str) -> bytes | None:
        """The stored arguments of the newest applied event named one of ``names`` whose
        persona is ``persona_id``, or ``None``."""
        query = (
            select(journal.c.global_seq, journal.c.args)
            .where(
                journal.c.name.in_(sorted(names)),
                journal.c.persona_id == persona_id,
                journal.c.status == APPLIED,
            )
            .order_by(journal.c.global_seq.desc())
            .limit(1)
        )
        found = [row for conn in self._conns if (row := conn.execute(query).first()) is not None]
        return max(found)[1].encode() if found else None


def head(conn: Connection) -> int:
    """The highest global position journaled, or 0."""
    return int(conn.execute(select(func.coalesce(func.max(journal.c.global_seq), 0))).scalar_one())


def _record(row: Any) -> EventRecord:
    return EventRecord(
        id=row.event_id,
        name=row.name,
        args=msgspec.Raw(row.args.encode()),
        position=Position(row.global_seq, row.client_seq, row.generation),
        parent=Position(row.parent_global_seq, row.parent_client_seq),
        client_id=row.client_id,
        session_id=row.session_id,
        at=row.at,
    )


def journal_entries(
    conn: Connection,
    *,
    after: int = 0,
    status: str | None = None,
    named: Collection[str] | None = None,
    batch: int = 2_000,
) -> Iterator[tuple[EventRecord, str, str | None]]:
    """Journaled events after global position ``after``, in order, with status and error;
    only those with a name in ``named``, if given."""
    last = after
    while True:
        query = select(journal).where(journal.c.global_seq > last)
        if status is not None:
            query = query.where(journal.c.status == status)
        if named is not None:
            query = query.where(journal.c.name.in_(sorted(named)))
        rows = conn.execute(query.order_by(journal.c.global_seq).limit(batch)).all()
        for row in rows:
            yield _record(row), row.status, row.error
        if len(rows) < batch:
            return
        last = rows[-1].global_seq


def merged(
    conns: Iterable[Connection], after: int = 0, *, named: Collection[str] | None = None
) -> list[EventRecord]:
    """Every event journaled after ``after`` on ``conns`` (one per shard), once each (an
    event touching several shards is journaled on each), in global order; only those
    with a name in ``named``, if given."""
    found: dict[str, EventRecord] = {}
    for conn in conns:
        for record, _status, _error in journal_entries(conn, after=after, named=named):
            found.setdefault(record.id, record)
    return sorted(found.values(), key=lambda r: r.position.global_seq)


def count(conn: Connection, status: str | None = None, *, after: int = 0) -> int:
    """How many events the journal holds (with ``status``, if given) after ``after``."""
    query = select(func.count()).select_from(journal)
    if status is not None:
        query = query.where(journal.c.status == status)
    if after:
        query = query.where(journal.c.global_seq > after)
    return int(conn.execute(query).scalar_one())


def ids(conn: Connection, status: str, *, after: int = 0) -> set[str]:
    """The ids of the events with ``status`` journaled after ``after``."""
    query = select(journal.c.event_id).where(
        journal.c.status == status, journal.c.global_seq > after
    )
    return set(conn.execute(query).scalars())


def tables() -> Iterable[Table]:
    """The journal's tables."""
    return journal_metadata.sorted_tables
