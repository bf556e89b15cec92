"""Read queries: SQL text or SQLAlchemy selects, typed rows, and what a query reads.

Rows are named tuples whose values are converted by the declared type of their column
(SQLite reports it for every column read straight from a table): ``DATETIME`` to aware
datetimes, ``BOOLEAN`` to bool, ``JSON`` to Python values.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import apsw
import msgspec
from sqlalchemy import BindParameter, Column, Table
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql import operators, visitors
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BinaryExpression, BooleanClauseList, ClauseElement
from sqlalchemy.sql.selectable import Select

from pjai.errors import QueryError
from pjai.schema.types import (
    SQLITE_BOOLEAN,
    SQLITE_DATETIME,
    SQLITE_JSON,
    SQLITE_ZTEXT,
    AnySelect,
    from_iso,
    read_text,
)
from pjai.store.sqlite import adapt

__all__ = [
    "COMPILED_KEPT",
    "Params",
    "Prepared",
    "Query",
    "Row",
    "RowReader",
    "prepare",
    "read_with_tables",
]

Query = str | AnySelect
"""A read query: SQL text (``?`` or ``:name`` parameters) or a SQLAlchemy ``select``."""

Params = Sequence[Any] | Mapping[str, Any] | None

if TYPE_CHECKING:

    class Row(tuple[Any, ...]):
        """A result row: a named tuple (``row.name`` or ``row[0]``) of typed values."""

        _fields: tuple[str, ...]

        def __getattr__(self, name: str) -> Any: ...

        def _asdict(self) -> dict[str, Any]: ...

else:
    Row = tuple

RowFilters = Mapping[str, Mapping[str, frozenset[Any]]]
"""Per table, per column: the stored values a row must have to be read by the query."""

_DIALECT = sqlite.dialect()
COMPILED_KEPT = 256
"""How many compiled selects are kept for their next run (a live query's, or a query
built once and run often); the least recently run go first."""

_compiled: OrderedDict[int, tuple[AnySelect, SQLCompiler]] = OrderedDict()
_compiled_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Prepared:
    """A query ready for apsw: SQL, parameters, and row filters found in its WHERE."""

    sql: str
    params: Sequence[Any] | Mapping[str, Any]
    filters: RowFilters


def prepare(query: Query, params: Params = None, *, live: bool = False) -> Prepared:
    """Compile ``query`` for SQLite and bind ``params``; ``live`` also finds row filters."""
    if isinstance(query, str):
        if params is None:
            return Prepared(query, (), {})
        if isinstance(params, Mapping):
            return Prepared(query, {k: adapt(v) for k, v in params.items()}, {})
        return Prepared(query, tuple(map(adapt, params)), {})
    if not isinstance(query, Select):
        raise QueryError(f"cannot run {type(query).__name__}: pass SQL text or a select()")
    if params is not None and not isinstance(params, Mapping):
        raise QueryError("a select() takes its parameters by name, as a mapping")
    compiled = _compile(query)
    try:
        state = compiled.construct_expanded_state(dict(params) if params else None)
    except Exception as exc:  # SQLAlchemy raises several types for bad parameters
        raise QueryError(f"cannot bind parameters: {exc}") from exc
    values = tuple(map(adapt, state.positional_parameters or ()))
    if not live:
        return Prepared(state.statement, values, {})
    bound = {**state.parameters, **(params or {})}
    return Prepared(state.statement, values, _row_filters(query, bound))


def _compile(query: AnySelect) -> SQLCompiler:
    # Bounded: a compiled select holds its select, so a cache of every select ever run
    # would keep them all (each search builds new ones).
    key = id(query)
    with _compiled_lock:
        hit = _compiled.get(key)
        if hit is not None and hit[0] is query:
            _compiled.move_to_end(key)
            return hit[1]
    compiled = query.compile(dialect=_DIALECT)
    assert isinstance(compiled, SQLCompiler)
    with _compiled_lock:
        _compiled[key] = (query, compiled)
        while len(_compiled) > COMPILED_KEPT:
            _compiled.popitem(last=False)
    return compiled


def _row_filters(query: AnySelect, bound: Mapping[str, Any]) -> RowFilters:
    """Equality and IN conditions of the top-level WHERE on tables read exactly once.

    A row of such a table that fails any of them cannot be in the result, so changes
    to it cannot change the result. Anything else is left to table-level tracking.
    """
    where = query.whereclause
    if where is None:
        return {}
    seen: dict[str, int] = {}
    for element in visitors.iterate(query):
        if isinstance(element, Table):
            seen[element.name] = seen.get(element.name, 0) + 1
    conjuncts: Sequence[ClauseElement] = (
        where.clauses
        if isinstance(where, BooleanClauseList) and where.operator is operators.and_
        else [where]
    )
    filters: dict[str, dict[str, frozenset[Any]]] = {}
    for clause in conjuncts:
        if not isinstance(clause, BinaryExpression):
            continue
        column, value = clause.left, clause.right
        if not (isinstance(column, Column) and isinstance(column.table, Table)):
            continue
        if seen.get(column.table.name) != 1 or not isinstance(value, BindParameter):
            continue
        bound_value = bound.get(value.key, value.effective_value)
        if clause.operator is operators.eq and bound_value is not None:
            values = frozenset([adapt(bound_value)])
        elif clause.operator is operators.in_op and isinstance(bound_value, list | tuple):
            values = frozenset(map(adapt, bound_value))
        else:
            continue
        columns = filters.setdefault(column.table.name, {})
        columns[column.name] = columns[column.name] & values if column.name in columns else values
    return filters


def _convert_json(text: Any) -> Any:
    return msgspec.json.decode(text)


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    SQLITE_ZTEXT: read_text,
    SQLITE_DATETIME: from_iso,
    SQLITE_BOOLEAN: bool,
    SQLITE_JSON: _convert_json,
}


class RowReader:
    """Builds typed named-tuple rows; one row type per distinct result shape."""

    def __init__(self, limit: int = 512) -> None:
        self._shapes: dict[tuple[tuple[str, str | None], ...], Callable[[Any], Row]] = {}
        self._limit = limit

    def read(self, cursor: apsw.Cursor) -> list[Row]:
        """All rows of an executed cursor."""
        return list(self.iterate(cursor))

    def iterate(self, cursor: apsw.Cursor) -> Iterator[Row]:
        """The rows of an executed cursor, one by one."""
        try:
            description = cursor.get_description()
        except apsw.ExecutionCompleteError:
            return iter(())
        make = self._shapes.get(description)
        if make is None:
            if len(self._shapes) >= self._limit:
                self._shapes.clear()
            make = self._shapes[description] = _row_maker(description)
        return map(make, cursor)


def read_with_tables(
    conn: apsw.Connection, rows: RowReader, prepared: Prepared
) -> tuple[list[Row], frozenset[str]]:
    """Run ``prepared`` on ``conn``: its rows, and every table it read (a full-text
    index's shadow tables included: commits change those, never the virtual table)."""
    tables: set[str] = set()

    def authorize(op: int, table: str | None, *_: Any) -> int:
        if op == apsw.SQLITE_READ and table:
            tables.add(table)
        return apsw.SQLITE_OK

    cursor = conn.cursor()
    conn.authorizer = authorize
    try:
        cursor.execute(prepared.sql, prepared.params, can_cache=False)
    finally:
        conn.authorizer = None
    found = rows.read(cursor)
    return found, frozenset(tables | _shadow_tables(conn, tables))


def _shadow_tables(conn: apsw.Connection, tables: set[str]) -> set[str]:
    """The shadow tables of the virtual tables among ``tables``."""
    listed = [
        (str(name), str(kind))
        for name, kind in conn.execute("SELECT name, type FROM pragma_table_list")
    ]
    virtual = [f"{name}_" for name, kind in listed if kind == "virtual" and name in tables]
    if not virtual:
        return set()
    return {
        name
        for name, kind in listed
        if kind == "shadow" and any(name.startswith(prefix) for prefix in virtual)
    }


def _row_maker(description: tuple[tuple[str, str | None], ...]) -> Callable[[Any], Row]:
    names = [name for name, _ in description]
    row_type = cast("type[Row]", namedtuple("Row", names, rename=True))
    new = tuple.__new__
    conversions = [
        (index, _CONVERTERS[decl.upper()])
        for index, (_, decl) in enumerate(description)
        if decl and decl.upper() in _CONVERTERS
    ]
    if not conversions:
        return lambda raw: new(row_type, raw)

    def make(raw: Any) -> Row:
        values = list(raw)
        for index, convert in conversions:
            value = values[index]
            if value is not None:
                values[index] = convert(value)
        return new(row_type, values)

    return make
