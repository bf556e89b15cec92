"""The materialized state: PJai's tables in the store database, written through ops."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import apsw
from sqlalchemy import Table

from pjai.errors import MaterializationError, StoreCorruptError
from pjai.schema.event import Schema
from pjai.schema.ops import Insert, Missing, Op
from pjai.schema.render import (
    SQLITE,
    BadOp,
    Batch,
    OpRenderer,
    batched,
    is_check,
    quote,
    writes,
)
from pjai.schema.violations import sqlite_constraint_error
from pjai.store.log import INTERNAL_TABLES

__all__ = ["StateWriter"]

_REFUSALS = (
    apsw.ConstraintError,
    apsw.SQLError,
    apsw.TooBigError,
    apsw.MismatchError,
    OverflowError,
    ValueError,
    BadOp,
)
"""What an event's ops can make SQLite refuse (see :meth:`StateWriter.apply`)."""


class StateWriter:
    """Creates the state tables and applies materializer ops to them through apsw."""

    def __init__(self, conn: apsw.Connection, schema: Schema) -> None:
        self._conn = conn
        self._schema = schema
        self.tables: dict[str, Table] = {t.name: t for t in schema.metadata.sorted_tables}
        self._render = OpRenderer(schema.metadata, SQLITE).render

    # -- schema -------------------------------------------------------------------

    def create(self, *, indexes: bool = True) -> None:
        """Create the state tables, and their indexes unless a bulk load follows."""
        for statement in self._schema.table_ddl:
            self._conn.execute(statement)
        if indexes:
            self.create_indexes(fill=False)

    def create_indexes(self, *, fill: bool = True) -> None:
        """Create the secondary indexes and derived structures (full-text index).

        After a bulk load (``fill``) the derived structures index the rows at once:
        sorting once beats inserting row by row.
        """
        for statement in self._schema.index_ddl:
            self._conn.execute(statement)
        for statement in self._schema.derived:
            self._conn.execute(statement)
        if fill:
            for statement in self._schema.derived_fill:
                self._conn.execute(statement)

    def flush(self, changed: Iterable[str]) -> None:
        """Bring derived structures up to date with the rows noted in ``changed`` tables
        (the store calls this before each commit)."""
        for table in changed:
            for statement in self._schema.derived_flush.get(table, ()):
                self._conn.execute(statement)

    def drop_all(self) -> None:
        """Drop every table and view that is not the event log or metadata."""
        # Virtual tables first: dropping one drops its shadow tables with it.
        rows = self._conn.execute(
            "SELECT type, name FROM sqlite_schema WHERE type IN ('table', 'view') "
            "AND name NOT LIKE 'sqlite_%' ORDER BY sql NOT LIKE 'CREATE VIRTUAL%'"
        ).fetchall()
        for kind, name in rows:
            if name not in INTERNAL_TABLES:
                self._conn.execute(f"DROP {str(kind).upper()} IF EXISTS {quote(str(name))}")

    def check_references(self) -> None:
        """Raise :class:`StoreCorruptError` if a row refers to a missing row."""
        broken = self._conn.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            table, rowid, parent, _ = broken[0]
            raise StoreCorruptError(
                f"{len(broken)} row(s) refer to missing rows, first {table} rowid {rowid} "
                f"-> {parent}; the event log does not replay to a consistent state"
            )

    # -- writing ------------------------------------------------------------------

    def apply(self, event: str, ops: Sequence[Op]) -> None:
        """Run one event's ops; raise :class:`MaterializationError` if one is refused."""
        for op in ops:
            try:
                sql, params = self._render(op)
                cursor = self._conn.execute(sql, params)
                if is_check(op):
                    matched = cursor.fetchone() is not None
                else:
                    matched = self._conn.changes() > 0
            except apsw.ConstraintError as exc:
                raise sqlite_constraint_error(event, op, str(exc)) from exc
            except apsw.SQLError as exc:
                raise MaterializationError(event, f"cannot write {op.table}: {exc}") from exc
            except (OverflowError, ValueError, apsw.TooBigError, apsw.MismatchError) as exc:
                # A value SQLite cannot hold (validation keeps them out of new events;
                # logs written before it may still carry them).
                raise MaterializationError(
                    event, f"cannot store a value in {op.table}: {exc}"
                ) from exc
            except BadOp as exc:
                raise MaterializationError(event, f"materializer bug: {exc}") from exc
            if not matched and not isinstance(op, Insert) and op.missing is not None:
                raise MaterializationError(event, op.missing.reason, field=op.missing.field)

    def apply_many(self, events: Sequence[tuple[str, Sequence[Op]]]) -> None:
        """Run several events' ops, given as ``(name, ops)``, as :meth:`apply` would one
        event after another, in as few statements as that allows
        (:func:`~pjai.schema.batches.batched`). A refusal raises what :meth:`apply` raises
        for the first event at fault; the state is then as before the call.
        """
        if len(events) == 1 and writes(events[0][1]) <= 1:
            # Nothing to plan across, and a failing statement undoes itself.
            self.apply(*events[0])
            return
        named = [(name, op) for name, ops in events for op in ops]
        ops = [op for _name, op in named]
        self._conn.execute("SAVEPOINT pjai_batch")
        try:
            try:
                unmatched = self._run(ops, batched(ops, self._render))
            except _REFUSALS:
                # Which event is at fault: go again one event at a time, which names it.
                self._conn.execute("ROLLBACK TO pjai_batch")
                for name, event_ops in events:
                    self.apply(name, event_ops)
                return
            if unmatched is not None:
                at, missing = unmatched
                raise MaterializationError(named[at][0], missing.reason, field=missing.field)
        except BaseException:
            self._conn.execute("ROLLBACK TO pjai_batch")
            raise
        finally:
            self._conn.execute("RELEASE pjai_batch")

    def _run(self, ops: Sequence[Op], batch: Batch) -> tuple[int, Missing] | None:
        matched: list[int] = []
        for sql, rows, check in batch.statements:
            if len(rows) > 1:
                self._conn.executemany(sql, rows)
                matched.append(len(rows))
                continue
            cursor = self._conn.execute(sql, rows[0])
            matched.append((cursor.fetchone() is not None) if check else self._conn.changes())
        return batch.unmatched(ops, matched)

    def load(self, events: Iterable[tuple[str, Sequence[Op]]]) -> None:
        """Write the ops of events already known to apply, given as ``(name, ops)`` (a
        replay whose outcomes the log records): existence checks are skipped, and each
        run of inserts with the same columns goes to SQLite as one ``executemany``.

        Raises if a write is refused after all (an SQLite error, or
        :class:`MaterializationError` for an update or delete that matched nothing):
        the caller's transaction is then to be rolled back.
        """
        run_sql: str | None = None
        run: list[list[Any]] = []
        for name, ops in events:
            for op in ops:
                if is_check(op):
                    continue
                sql, params = self._render(op)
                if isinstance(op, Insert) and sql == run_sql:
                    run.append(params)
                    continue
                if run_sql is not None:
                    self._conn.executemany(run_sql, run)
                    run_sql, run = None, []
                if isinstance(op, Insert):
                    run_sql, run = sql, [params]
                    continue
                self._conn.execute(sql, params)
                if op.missing is not None and self._conn.changes() == 0:
                    raise MaterializationError(name, op.missing.reason, field=op.missing.field)
        if run_sql is not None:
            self._conn.executemany(run_sql, run)
