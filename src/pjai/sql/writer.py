"""Projecting events into one SQL database: state rows, journal and checkpoint at once."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, Engine
from sqlalchemy import exc as sa

from pjai.errors import (
    ConfigError,
    ErasedValueError,
    MaterializationError,
    PjaiError,
    QueryError,
    SqlAheadError,
)
from pjai.schema.codec import ColumnCodec
from pjai.schema.event import Schema
from pjai.schema.ops import Op
from pjai.schema.records import EventRecord
from pjai.schema.render import BadOp, OpRenderer, batched
from pjai.schema.types import utc_now
from pjai.sql import journal
from pjai.sql.backend import Backend, backend_for

__all__ = ["Projected", "Projection", "SqlTransaction", "SqlWriter"]

Step = tuple[Op, str]
"""An op and the name of the event it belongs to."""


@dataclass(frozen=True, slots=True)
class Projection:
    """One event to project: its record, shard key, and ops (or why it has none)."""

    record: EventRecord
    persona_id: str | None
    ops: Sequence[Op] = ()
    error: str | None = None

    def journal_op(self, now: datetime, refused: str | None = None) -> Op:
        """The insert that journals this event: applied, or quarantined as ``refused``."""
        status = journal.APPLIED if refused is None else journal.QUARANTINED
        return journal.journal_op(self.record, self.persona_id, status, refused, now)


@dataclass(slots=True)
class Projected:
    """What a projection did."""

    applied: int = 0
    quarantined: list[tuple[EventRecord, str]] = field(default_factory=list)


class SqlWriter:
    """Writes events into one SQL database, exactly once, in global order.

    In one transaction it applies each event's ops to the state tables, journals the
    event and moves the projection's checkpoint. Events the journal already holds are
    skipped. ``strict`` projection (a standalone commit) raises on the first refused
    event and writes nothing; otherwise a refused event is journaled as quarantined,
    with the reason, and the others go on.
    """

    def __init__(
        self,
        engine: Engine,
        schema: Schema,
        *,
        projection: str = "primary",
        sealer: ColumnCodec | None = None,
    ) -> None:
        self.engine = engine
        self.sealer = sealer
        """Seals the sensitive columns, when this database keeps them sealed."""
        self.backend: Backend = backend_for(engine)
        self.projection = projection
        tables = [*schema.metadata.sorted_tables, *journal.tables()]
        self._render = OpRenderer(tables, self.backend.flavor).render
        self._failures: tuple[type[BaseException], ...] = (
            sa.SQLAlchemyError,
            OSError,
            *self.backend.errors,
        )
        self._checkpoint: int | None = None
        self._refusals: tuple[type[BaseException], ...] = (
            MaterializationError,
            BadOp,
            *self.backend.errors,
            *self.backend.value_errors,
        )

    @contextmanager
    def translating(self, doing: str) -> Iterator[None]:
        """Driver and pool errors raised in the block come out as :mod:`pjai.errors`."""
        try:
            yield
        except PjaiError:
            raise
        except UnicodeEncodeError as exc:  # the caller's text, before it reached SQL
            raise QueryError(
                f"{doing}: a value is not valid Unicode text (a lone surrogate at position "
                f"{exc.start}); give text that can be encoded as UTF-8"
            ) from exc
        except self._failures as exc:
            raise self.backend.translate(exc, doing) from exc

    @contextmanager
    def connection(
        self, doing: str, *, write: bool = False, one_statement: bool = False
    ) -> Iterator[Connection]:
        """A pooled connection; driver errors come out as :mod:`pjai.errors`.

        ``one_statement`` is for a read of a single statement: on PostgreSQL it runs
        outside a transaction, which saves the round trips of ``BEGIN`` and of the
        ``ROLLBACK`` that returns the connection to the pool.
        """
        options: dict[str, str] = {"pjai_begin": "IMMEDIATE"} if write else {}
        if one_statement and not write and self.backend.name == "postgresql":
            options["isolation_level"] = "AUTOCOMMIT"
        with self.translating(doing), self.engine.connect().execution_options(**options) as conn:
            yield conn

    def backup(self, destination: Path) -> None:
        """Copy an SQLite database, as of now and while it is in use, to the new file
        ``destination`` (SQLite's online backup); other databases have their own tools."""
        if self.engine.dialect.name != "sqlite":
            raise ConfigError(
                f"{self.engine.url.render_as_string()} is not SQLite: back it up with its "
                "own tools (pg_dump for PostgreSQL)"
            )
        with self.translating(f"backing SQL up to {destination}"):
            raw = self.engine.raw_connection()
            try:
                copy = sqlite3.connect(destination)
                try:
                    raw.driver_connection.backup(copy)  # type: ignore[union-attr]
                finally:
                    copy.close()
            finally:
                raw.close()

    def checkpoint(self) -> int:
        """How far in global order this database has applied events."""
        with self.connection("reading the checkpoint", write=True) as conn, conn.begin():
            return journal.ensure_checkpoint(conn, self.projection, utc_now())

    @contextmanager
    def transaction(self, doing: str = "writing to SQL") -> Iterator[SqlTransaction]:
        """A write transaction, committed when the block ends without error."""
        known, self._checkpoint = self._checkpoint, None
        with self.connection(doing, write=True) as conn, conn.begin():
            tx = SqlTransaction(self, conn, known)
            yield tx
        # Committed: what this transaction left the checkpoint at is known until the
        # next transaction starts, and saves reading it back.
        self._checkpoint = tx.checkpoint


class SqlTransaction:
    """An open write transaction on one SQL database (see :meth:`SqlWriter.transaction`)."""

    def __init__(self, writer: SqlWriter, conn: Connection, checkpoint: int | None) -> None:
        self.writer = writer
        self.conn = conn
        self.checkpoint = checkpoint
        """The projection's checkpoint, if known without reading it."""
        self._dbapi = conn.connection.driver_connection
        self._backend = writer.backend

    def project(self, items: Sequence[Projection], *, strict: bool) -> Projected:
        """Apply ``items`` (in global order); see :class:`SqlWriter`."""
        result = Projected()
        if not items:
            return result
        now = utc_now()
        done = journal.applied_ids(self.conn, [item.record.id for item in items])
        todo = [item for item in items if item.record.id not in done]
        self._statement("SAVEPOINT pjai_batch")
        try:
            self._run([step for item in todo for step in self._steps(item, now, journaled=False)])
            self._insert_many([item.journal_op(now) for item in todo])
            self._statement("RELEASE pjai_batch")
            result.applied = len(todo)
        except self.writer._refusals:
            if not self._backend.in_transaction(self._dbapi):
                raise  # the database ended the transaction itself (a full disk): no event's fault
            self._undo("pjai_batch")
            # Go again event by event to find the refused ones.
            for item in todo:
                error = self._one(item, now)
                if error is None:
                    result.applied += 1
                elif strict:
                    raise error from None
                else:
                    result.quarantined.append((item.record, str(error)))
                    self._run([(item.journal_op(now, str(error)), item.record.name)])
        self.advance(items[-1].record.position.global_seq, now)
        return result

    def head(self, now: datetime, *, lock: bool = False) -> int:
        """The projection's checkpoint; ``lock`` holds it until the transaction ends."""
        if self.checkpoint is None or lock:
            self.checkpoint = journal.ensure_checkpoint(
                self.conn, self.writer.projection, now, lock=lock
            )
        return self.checkpoint

    def empty(self, schema: Schema) -> None:
        """Delete every state row, journal entry and checkpoint (before a full replay)."""
        for table in reversed([*schema.metadata.sorted_tables, *journal.tables()]):
            self.conn.execute(table.delete())
        self.checkpoint = None

    def advance(self, global_seq: int, now: datetime, *, follows: int | None = None) -> None:
        """Move the projection's checkpoint forward to ``global_seq`` (never back).

        ``follows``: the events go on from there, so the checkpoint must stand there;
        :class:`~pjai.errors.SqlAheadError` when it does not (SQL was restored from a
        backup, or another process wrote to it): writing on would leave a gap in SQL, or
        take places of events it holds.
        """
        if follows is not None:
            op = journal.checkpoint_op(self.writer.projection, global_seq, now, follows=follows)
            batch = batched([op], self.writer._render)
            if batch.unmatched([op], self._backend.run(self._dbapi, batch.statements)) is None:
                self.checkpoint = global_seq
                return
            self.checkpoint = None  # read afresh; a new database has no row yet
            if (head := self.head(now)) != follows:
                raise SqlAheadError(
                    f"SQL's checkpoint stands at e{head}, not at e{follows} where these "
                    "events go on: SQL changed since this process last wrote to it "
                    "(restored from a backup, or written by a process with the store off)"
                )
        if global_seq > self.head(now):
            op = journal.checkpoint_op(self.writer.projection, global_seq, now)
            self._run([(op, "checkpoint")])
            self.checkpoint = global_seq

    def _one(self, item: Projection, now: datetime) -> MaterializationError | None:
        """Apply one event that a batch refused, a statement at a time to name the op
        at fault; returns why it was refused, or ``None`` once it applied."""
        self._statement("SAVEPOINT pjai_event")
        try:
            for step in self._steps(item, now):
                try:
                    self._run([step])
                except (*self._backend.errors, *self._backend.value_errors) as exc:
                    rejected = self._backend.rejection(exc, item.record.name, step[0])
                    if rejected is None:
                        raise
                    raise rejected from exc
        except MaterializationError as exc:
            self._undo("pjai_event")
            position = item.record.position.global_seq
            taken = journal.event_at(self.conn, position)
            if taken == item.record.id:
                # Another process catching SQL up committed this very event since this
                # transaction looked (PostgreSQL lets both project it): it stands applied.
                return None
            if taken is not None:
                raise SqlAheadError(
                    f"SQL's journal holds event {taken} at e{position}, where "
                    f"{item.record.name} {item.record.id} was to go: another process "
                    "committed to SQL with the store switched off"
                ) from exc
            return exc
        except BadOp as exc:
            self._undo("pjai_event")
            return MaterializationError(item.record.name, f"materializer bug: {exc}")
        self._statement("RELEASE pjai_event")
        return None

    def _undo(self, savepoint: str) -> None:
        self._statement(f"ROLLBACK TO {savepoint}")
        self._statement(f"RELEASE {savepoint}")

    def _statement(self, sql: str) -> None:
        self._backend.command(self._dbapi, sql)

    def _steps(self, item: Projection, now: datetime, *, journaled: bool = True) -> list[Step]:
        name = item.record.name
        if item.error is not None:
            raise MaterializationError(name, item.error)
        ops = item.ops
        if self.writer.sealer is not None:
            try:
                ops = self.writer.sealer.seal_ops(ops, item.persona_id, bytes(item.record.args))
            except ErasedValueError as exc:  # its persona erased since it was read
                raise MaterializationError(name, str(exc)) from exc
        steps: list[Step] = [(op, name) for op in ops]
        if journaled:
            steps.append((item.journal_op(now), name))
        return steps

    def _insert_many(self, inserts: Sequence[Op]) -> None:
        """Run same-shaped inserts as one batch (journal rows, which nothing checks)."""
        if not inserts:
            return
        rendered = [self.writer._render(op) for op in inserts]
        self._backend.run_many(self._dbapi, rendered[0][0], [params for _sql, params in rendered])

    def _run(self, steps: Sequence[Step]) -> None:
        """Run ``steps`` as if one by one, in as few statements as that allows
        (:func:`~pjai.schema.batches.batched`)."""
        ops = [op for op, _event in steps]
        batch = batched(ops, self.writer._render)
        matched = self._backend.run(self._dbapi, batch.statements)
        if (unmatched := batch.unmatched(ops, matched)) is not None:
            at, missing = unmatched
            raise MaterializationError(steps[at][1], missing.reason, field=missing.field)
