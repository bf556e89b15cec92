"""The rows :func:`~pjai.hybrid.integrity.verify` compares, read from the store and from
the SQL shards in one form, so that the same row hashes alike on both sides.

Rows are compared in one of three forms (:data:`Form`):

- ``raw``, where both sides are SQLite: they store identical values, hashed as read;
- ``stored``, with PostgreSQL: PostgreSQL writes its timestamps and booleans the way
  the store keeps them (ISO text, 0/1); on both sides compressed text is inflated and
  JSON compared by value (:func:`_frozen`); nothing else is converted;
- ``typed``, where SQL keeps columns sealed: both sides read as Python values, the
  sealed ones opened.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal

import msgspec
from sqlalchemy import Boolean, Table

from pjai.hybrid.onestate import Pinned, reading
from pjai.schema.tables import persona_column
from pjai.schema.types import CompressibleText, JsonDocument, Timestamp, read_text
from pjai.sql.shards import ShardSet
from pjai.store import Store

__all__ = ["Form", "Row", "layout", "rows_in_sql", "rows_in_store"]

Row = tuple[Any, ...]
"""A row as read: its columns' values in the table's order."""


def layout(table: Table) -> tuple[str, list[str]]:
    """The column that holds a row's persona in ``table``, and its columns' names."""
    persona = persona_column(table.name)
    return persona, [c.name for c in table.columns]


Form = Literal["raw", "stored", "typed"]
"""How rows are compared (see the module doc)."""

_STORED_TIME = """to_char("{0}" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""
"""A PostgreSQL timestamp written as the store keeps it (``to_iso``)."""


def _canonical(table: Table, form: Form, *, inflate: bool) -> Callable[[Row], Row] | None:
    """What makes a row of ``form`` hashable and equal across backends, if anything.

    JSON values (decoded first where stored as text) become :func:`_frozen` values;
    stored compressed text is inflated where it may be (``inflate``). Typed timestamps
    need nothing: aware datetimes of the same instant are equal and hash alike whatever
    their time zone object, as do ``True`` and ``1``.
    """
    if form == "raw":
        return None
    json = [i for i, c in enumerate(table.columns) if isinstance(c.type, JsonDocument)]
    texts = [i for i, c in enumerate(table.columns) if isinstance(c.type, CompressibleText)]
    if form == "typed" or not inflate:
        texts = []
    if not (json or texts):
        return None

    def canonical(row: Row) -> Row:
        values = list(row)
        for i in json:
            value = values[i]
            if form == "stored" and value is not None:
                value = msgspec.json.decode(value)
            values[i] = _frozen(value)
        for i in texts:
            values[i] = read_text(values[i])
        return tuple(values)

    return canonical


_EXACT = 2**53
"""Integers up to this size are exact as floats."""


def _frozen(value: Any) -> Any:
    """A decoded JSON value made hashable, equal to another exactly when they are the
    same JSON value: objects whatever their key order, booleans apart from 1 and 0,
    and numbers by value, as PostgreSQL's ``jsonb`` keeps them: it writes ``1e23`` back
    as ``100000000000000000000000`` and ``-0.0`` as ``0.0``, so an integer beyond what a
    float holds exactly is compared as the float it rounds to."""
    kind = type(value)
    if kind is list:
        return ("[]", *map(_frozen, value))
    if kind is dict:
        return ("{}", *sorted((key, _frozen(item)) for key, item in value.items()))
    if kind is bool:
        return ("bool", value)
    if kind is int and not -_EXACT <= value <= _EXACT:
        return float(value)
    return value


def _select(table: Table, where: str = "", *, stored_by_postgres: bool = False) -> str:
    names = ", ".join(
        _stored_column(c) if stored_by_postgres else f'"{c.name}"' for c in table.columns
    )
    return f'SELECT {names} FROM "{table.name}"{where}'


def _stored_column(column: Any) -> str:
    """A PostgreSQL column as the store keeps its values."""
    if isinstance(column.type, Timestamp):
        return _STORED_TIME.format(column.name)
    if isinstance(column.type, Boolean):
        return f'"{column.name}"::int'
    if isinstance(column.type, JsonDocument):
        return f'"{column.name}"::text'
    return f'"{column.name}"'


def rows_in_store(
    store: Store, table: Table, *, form: Form, persona: str | None = None
) -> Iterator[Row]:
    """The store's rows of ``table`` (of ``persona`` alone, if given) in ``form``."""
    column, _ = layout(table)
    where = (
        "" if persona is None else " WHERE \"{}\" = '{}'".format(column, persona.replace("'", "''"))
    )
    rows = store.stream(_select(table, where), typed=form == "typed")
    canonical = _canonical(table, form, inflate=True)
    return rows if canonical is None else map(canonical, rows)


def rows_in_sql(
    shards: ShardSet,
    table: Table,
    *,
    form: Form,
    persona: str | None = None,
    pinned: Pinned | None = None,
) -> Iterator[Row]:
    """SQL's rows of ``table`` (of ``persona`` alone, if given) in ``form``, from every
    shard in turn, each read on its ``pinned`` connection if it has one; sealed
    columns are opened."""
    column, _ = layout(table)
    sealer = shards.sealer
    sealed = [
        (i, c.name)
        for i, c in enumerate(table.columns)
        if sealer and c.name in sealer.columns.get(table.name, ())
    ]
    owner = [c.name for c in table.columns].index(column)  # the row's persona

    def opened(plain: Callable[[Row], Row]) -> Callable[[Row], Row]:
        assert sealer is not None

        def convert(row: Row) -> Row:
            values = list(row)
            for i, name in sealed:
                values[i] = sealer.open_value(table.name, name, values[i], values[owner])
            return plain(tuple(values))

        return convert

    for index, shard in enumerate(shards):
        postgres = shard.engine.dialect.name == "postgresql"
        # PostgreSQL keeps text plain; SQLite may keep it compressed.
        convert = _canonical(table, form, inflate=not postgres) or tuple
        if sealed:
            convert = opened(convert)
        mark = "%s" if postgres else "?"
        where = "" if persona is None else f' WHERE "{column}" = {mark}'
        select = _select(table, where, stored_by_postgres=postgres and form == "stored")
        with reading(shard, (pinned or {}).get(index), f"reading {table.name} for verify") as conn:
            dbapi = conn.connection.driver_connection
            assert dbapi is not None
            # A named (server-side) cursor streams PostgreSQL rows instead of loading all.
            cursor = dbapi.cursor(name=f"pjai_verify_{table.name}") if postgres else dbapi.cursor()
            try:
                cursor.execute(select, () if persona is None else (persona,))
                while batch := cursor.fetchmany(10_000):
                    yield from map(convert, batch)
            finally:
                cursor.close()
