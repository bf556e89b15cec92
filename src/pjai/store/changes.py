"""What a write transaction changed, as SQLite itself reports it.

Table names come from SQLite's update hook, which sees every row change: materializer
writes, trigger effects, changesets applied by a rebase. For tables that live queries
filter by column values, a session extension changeset records each changed row, and
the old and new values of the filtered columns are read from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import apsw

__all__ = ["UNKNOWN", "ChangeTracker", "Changes"]

RowValues = dict[str, Any]


class _Unknown:
    """A value the tracker could not read; it matches every filter."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()


@dataclass(slots=True)
class Changes:
    """Tables a transaction changed, and for watched tables each changed row's values.

    ``rows[table]`` lists ``(old, new)`` pairs holding the watched columns; ``old`` is
    ``None`` for an inserted row and ``new`` is ``None`` for a deleted one. A table in
    ``tables`` but not in ``rows`` changed in ways that were not watched.
    """

    tables: set[str] = field(default_factory=set)
    rows: dict[str, list[tuple[RowValues | None, RowValues | None]]] = field(default_factory=dict)


class ChangeTracker:
    """Collects :class:`Changes` for one write transaction at a time."""

    def __init__(self, conn: apsw.Connection) -> None:
        self._conn = conn
        self._tables: set[str] = set()
        self._session: apsw.Session | None = None
        self._watch: Mapping[str, Iterable[str]] = {}
        self._columns: dict[str, list[str]] = {}
        conn.set_update_hook(self._on_change)

    def _on_change(self, _op: int, _db: str, table: str, _rowid: int) -> None:
        self._tables.add(table)

    @property
    def changed(self) -> frozenset[str]:
        """The tables changed so far in the current transaction."""
        return frozenset(self._tables)

    def begin(self, watch: Mapping[str, Iterable[str]]) -> None:
        """Start a transaction's tracking; ``watch`` maps tables to columns to report."""
        self._tables = set()
        self._watch = watch
        if watch:
            self._session = apsw.Session(self._conn, "main")
            for table in watch:
                self._session.attach(table)

    def end(self) -> Changes:
        """Finish tracking, after the transaction committed; return what changed."""
        changes = Changes(tables=self._tables)
        self._tables = set()
        session, self._session = self._session, None
        if session is None:
            return changes
        try:
            changeset = session.changeset()
        finally:
            session.close()
        for table in self._watch:
            if table in changes.tables:
                changes.rows[table] = []
        for change in apsw.Changeset.iter(changeset):
            rows = changes.rows.get(change.name)
            if rows is not None:
                rows.append(self._values(change))
        return changes

    def abandon(self) -> None:
        """Forget a transaction that was rolled back."""
        self._tables = set()
        if self._session is not None:
            self._session.close()
            self._session = None

    def forget_columns(self) -> None:
        """Drop cached table layouts (after the state tables were rebuilt)."""
        self._columns.clear()

    def _values(self, change: apsw.TableChange) -> tuple[RowValues | None, RowValues | None]:
        columns = self._table_columns(change.name)
        wanted = [(i, c) for i, c in enumerate(columns) if c in set(self._watch[change.name])]
        old_row, new_row = change.old, change.new
        old = {c: old_row[i] for i, c in wanted} if old_row is not None else None
        new = {c: new_row[i] for i, c in wanted} if new_row is not None else None
        if old is not None and new is not None:
            unchanged = [c for c, v in new.items() if v is apsw.no_change]
            if unchanged:
                assert old_row is not None
                current = self._current(change.name, columns, change.pk_columns, old_row, unchanged)
                for column in unchanged:
                    old[column] = new[column] = current.get(column, UNKNOWN)
        return old, new

    def _current(
        self,
        table: str,
        columns: list[str],
        pk_columns: set[int],
        old_row: tuple[Any, ...],
        wanted: list[str],
    ) -> RowValues:
        keys = sorted(pk_columns)
        where = " AND ".join(f'"{columns[i]}" = ?' for i in keys)
        select = ", ".join(f'"{c}"' for c in wanted)
        row = self._conn.execute(
            f'SELECT {select} FROM "{table}" WHERE {where}', [old_row[i] for i in keys]
        ).fetchone()
        return dict(zip(wanted, row, strict=True)) if row is not None else {}

    def _table_columns(self, table: str) -> list[str]:
        columns = self._columns.get(table)
        if columns is None:
            info = self._conn.execute(f'PRAGMA table_info("{table}")').fetchall()
            columns = self._columns[table] = [str(row[1]) for row in info]
        return columns
