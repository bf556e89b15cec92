"""The materialized state: PJai's tables in the store database, written through ops."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import apsw
import msgspec
from sqlalchemy import Boolean, Table

from pjai.errors import MaterializationError, StoreCorruptError
from pjai.schema.event import Schema
from pjai.schema.ops import NOT_NULL, Delete, Greatest, IfNull, Increment, Insert, Op, Update
from pjai.schema.types import JsonDocument, Timestamp, to_iso
from pjai.store.log import INTERNAL_TABLES

__all__ = ["StateWriter", "writes"]

Convert = Callable[[Any], Any]
_json = msgspec.json.Encoder()


def _to_json(value: Any) -> str:
    return _json.encode(value).decode()


def _converter(column_type: object) -> Convert | None:
    if isinstance(column_type, Timestamp):
        return to_iso
    if isinstance(column_type, JsonDocument):
        return _to_json
    if isinstance(column_type, Boolean):
        return int
    return None


def writes(ops: Sequence[Op]) -> int:
    """How many of ``ops`` write (an update without values only checks)."""
    return sum(1 for op in ops if not (isinstance(op, Update) and not op.values))


class _BadOp(Exception):
    """A materializer returned an op naming a table or column the schema lacks."""


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class StateWriter:
    """Applies materializer ops to the state tables, with SQL cached per op shape."""

    def __init__(self, conn: apsw.Connection, schema: Schema) -> None:
        self._conn = conn
        self._schema = schema
        self.tables: dict[str, Table] = {t.name: t for t in schema.metadata.sorted_tables}
        self._convert: dict[str, dict[str, Convert | None]] = {
            name: {c.name: _converter(c.type) for c in table.columns}
            for name, table in self.tables.items()
        }
        self._sql: dict[tuple[Any, ...], str] = {}
        self._inserts: dict[tuple[str, tuple[str, ...]], tuple[str, list[Convert | None]]] = {}

    # -- schema -------------------------------------------------------------------

    def create(self, *, indexes: bool = True) -> None:
        """Create the state tables, and their indexes unless a bulk load follows."""
        for statement in self._schema.table_ddl:
            self._conn.execute(statement)
        if indexes:
            self.create_indexes()

    def create_indexes(self) -> None:
        """Create the secondary indexes (sorting once beats inserting row by row)."""
        for statement in self._schema.index_ddl:
            self._conn.execute(statement)

    def drop_all(self) -> None:
        """Drop every table and view that is not the event log or metadata."""
        rows = self._conn.execute(
            "SELECT type, name FROM sqlite_schema WHERE type IN ('table', 'view') "
            "AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
        for kind, name in rows:
            if name not in INTERNAL_TABLES:
                self._conn.execute(f"DROP {str(kind).upper()} IF EXISTS {_quote(str(name))}")

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
                sql, params = self._insert(op) if isinstance(op, Insert) else self._render(op)
                cursor = self._conn.execute(sql, params)
                if isinstance(op, Update) and not op.values:
                    matched = cursor.fetchone() is not None
                else:
                    matched = self._conn.changes() > 0
            except apsw.ConstraintError as exc:
                raise _constraint_error(event, op, exc) from exc
            except apsw.SQLError as exc:
                raise MaterializationError(event, f"cannot write {op.table}: {exc}") from exc
            except _BadOp as exc:
                raise MaterializationError(event, f"materializer bug: {exc}") from exc
            if not matched and not isinstance(op, Insert) and op.missing is not None:
                raise MaterializationError(event, op.missing.reason, field=op.missing.field)

    def _insert(self, op: Insert) -> tuple[str, list[Any]]:
        # Inserts dominate bulk loads: SQL and converters are cached per column list.
        key = (op.table, tuple(op.values))
        cached = self._inserts.get(key)
        if cached is None:
            convert = self._table(op.table)
            for column in key[1]:
                self._value(convert, op.table, column, None)
            sql = _sql_for(("insert", *key))
            cached = self._inserts[key] = (sql, [convert[c] for c in key[1]])
        sql, converters = cached
        params = [
            v if v is None or fn is None else fn(v)
            for v, fn in zip(op.values.values(), converters, strict=True)
        ]
        return sql, params

    def _table(self, table: str) -> Mapping[str, Convert | None]:
        convert = self._convert.get(table)
        if convert is None:
            raise _BadOp(f"op names unknown table {table!r}")
        return convert

    def _render(self, op: Update | Delete) -> tuple[str, list[Any]]:
        convert = self._table(op.table)
        params: list[Any] = []
        set_shape: tuple[tuple[str, str], ...] = ()
        if isinstance(op, Update):
            set_shape = tuple(self._set(convert, op.table, op.values, params))
        where_shape = tuple(self._where(convert, op.table, op.where, params))
        kind = "delete" if isinstance(op, Delete) else "check" if not set_shape else "update"
        key = (kind, op.table, set_shape, where_shape)
        sql = self._sql.get(key)
        if sql is None:
            sql = self._sql[key] = _sql_for(key)
        return sql, params

    def _value(self, convert: Mapping[str, Convert | None], table: str, column: str, v: Any) -> Any:
        if column not in convert:
            raise _BadOp(f"op names unknown column {table}.{column}")
        fn = convert[column]
        return v if v is None or fn is None else fn(v)

    def _set(
        self,
        convert: Mapping[str, Convert | None],
        table: str,
        values: Mapping[str, Any],
        params: list[Any],
    ) -> list[tuple[str, str]]:
        shape = []
        for column, value in values.items():
            if isinstance(value, Increment):
                shape.append((column, "inc"))
                params.append(value.by)
            elif isinstance(value, Greatest):
                shape.append((column, "max"))
                stored = self._value(convert, table, column, value.value)
                params.extend((stored, stored))
            elif isinstance(value, IfNull):
                shape.append((column, "ifnull"))
                params.append(self._value(convert, table, column, value.value))
            else:
                shape.append((column, "set"))
                params.append(self._value(convert, table, column, value))
        return shape

    def _where(
        self,
        convert: Mapping[str, Convert | None],
        table: str,
        where: Mapping[str, Any],
        params: list[Any],
    ) -> list[tuple[str, str]]:
        shape = []
        for column, value in where.items():
            if column not in convert:
                raise _BadOp(f"op names unknown column {table}.{column}")
            if value is None:
                shape.append((column, "null"))
            elif value is NOT_NULL:
                shape.append((column, "notnull"))
            else:
                shape.append((column, "eq"))
                params.append(self._value(convert, table, column, value))
        return shape


_SET = {
    "set": "{c} = ?",
    "inc": "{c} = {c} + ?",
    "max": "{c} = max(coalesce({c}, ?), ?)",
    "ifnull": "{c} = coalesce({c}, ?)",
}
_WHERE = {"eq": "{c} = ?", "null": "{c} IS NULL", "notnull": "{c} IS NOT NULL"}


def _sql_for(key: tuple[Any, ...]) -> str:
    kind, table = key[0], _quote(key[1])
    if kind == "insert":
        columns = key[2]
        marks = ", ".join("?" * len(columns))
        return f"INSERT INTO {table} ({', '.join(map(_quote, columns))}) VALUES ({marks})"
    where = " AND ".join(_WHERE[k].format(c=_quote(c)) for c, k in key[3]) or "1"
    if kind == "check":
        return f"SELECT 1 FROM {table} WHERE {where} LIMIT 1"
    if kind == "delete":
        return f"DELETE FROM {table} WHERE {where}"
    sets = ", ".join(_SET[k].format(c=_quote(c)) for c, k in key[2])
    return f"UPDATE {table} SET {sets} WHERE {where}"


_FAILED_COLUMNS = re.compile(r"constraint failed: (?P<columns>[\w.]+(?:, [\w.]+)*)")
_FAILED_CHECK = re.compile(r"CHECK constraint failed: (?P<name>\w+)")


def _constraint_error(event: str, op: Op, exc: apsw.ConstraintError) -> MaterializationError:
    message = str(exc)
    if "UNIQUE" in message and (m := _FAILED_COLUMNS.search(message)):
        columns = [c.split(".")[-1] for c in m["columns"].split(", ")]
        values = getattr(op, "values", {})
        key = ", ".join(f"{c}={values.get(c)!r}" for c in columns)
        return MaterializationError(event, f"{op.table} already has a row with {key}")
    if "FOREIGN KEY" in message:
        return MaterializationError(event, f"{op.table} row refers to a row that does not exist")
    if (m := _FAILED_CHECK.search(message)) is not None:
        return MaterializationError(event, f"violates {op.table} rule {m['name']}")
    if "NOT NULL" in message and (m := _FAILED_COLUMNS.search(message)):
        column = m["columns"].split(".")[-1]
        return MaterializationError(event, f"{op.table}.{column} must not be NULL", field=column)
    return MaterializationError(event, f"violates a constraint of {op.table}: {message}")
