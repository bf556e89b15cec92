"""Materializer ops as SQL text, per backend.

Each backend that holds PJai's tables (the store's SQLite state, the SQL primary on
SQLite or PostgreSQL) renders the same ops with its own :class:`Flavor`: placeholder,
spelling of "greatest", and how values are stored. Statements are cached per op shape.

The flavors are :mod:`pjai.schema.flavors`; ops planned as few statements,
:mod:`pjai.schema.batches`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import MetaData, Table

from pjai.errors import PjaiError
from pjai.schema.batches import Batch, Statement, batched, is_check, writes
from pjai.schema.flavors import (
    SQLITE,
    SQLITE_TUNING,
    Convert,
    Flavor,
    plain_text,
    sqlite_functions,
)
from pjai.schema.ops import (
    NOT_NULL,
    Compress,
    Decayed,
    Decompress,
    Delete,
    Greatest,
    IfNull,
    Increment,
    Insert,
    Op,
    TextForTier,
    Update,
)

__all__ = [
    "SQLITE",
    "SQLITE_TUNING",
    "BadOp",
    "Batch",
    "Convert",
    "Flavor",
    "OpRenderer",
    "Statement",
    "batched",
    "is_check",
    "plain_text",
    "quote",
    "sqlite_functions",
    "writes",
]


class BadOp(PjaiError):
    """A materializer returned an op naming a table or column the schema lacks."""


def quote(name: str) -> str:
    """``name`` as an SQL identifier, double-quoted."""
    return '"' + name.replace('"', '""') + '"'


_DECAYED_TO_NONE = -740
"""The natural log of the least value a decay leaves (about 4e-322): below it the value
is none (0). Far enough above where a product of floats ends at 0 (about -744.4) that no
rounding reaches it."""


class OpRenderer:
    """Renders ops as ``(sql, params)`` for one flavor, caching SQL per op shape."""

    def __init__(self, tables: MetaData | Iterable[Table], flavor: Flavor) -> None:
        self.flavor = flavor
        if isinstance(tables, MetaData):
            tables = tables.sorted_tables
        self._convert: dict[str, dict[str, Convert | None]] = {
            table.name: {c.name: flavor.converter(c.type) for c in table.columns}
            for table in tables
        }
        self._sql: dict[tuple[Any, ...], str] = {}
        self._inserts: dict[tuple[str, tuple[str, ...]], tuple[str, list[Convert | None]]] = {}
        mark = flavor.placeholder
        self._set = {
            "set": "{c} = " + mark,
            "inc": "{c} = {c} + " + mark,
            # Never computes past the limit: c + by > limit is tested as c > limit - by.
            "inc_upto": f"{{c}} = CASE WHEN {{c}} > {mark} THEN {mark} ELSE {{c}} + {mark} END",
            "max": "{c} = " + flavor.greatest + "(coalesce({c}, " + mark + "), " + mark + ")",
            "ifnull": "{c} = coalesce({c}, " + mark + ")",
            "compress": "{c} = " + flavor.compress,
            "decompress": "{c} = " + flavor.decompress,
            # Never below the smallest float: PostgreSQL refuses a result that would
            # be, SQLite gives 0. A result under e**_DECAYED_TO_NONE is none on both.
            "decay": f"{{c}} = CASE WHEN {{c}} <= 0 THEN {{c}} "
            f"WHEN ln({{c}}) - {{r}} * {mark} < {_DECAYED_TO_NONE} THEN 0.0 "
            f"ELSE {{c}} * exp(-{{r}} * {mark}) END",
            "tiertext": "{c} = CASE WHEN \"tier\" = 'cold' THEN "
            + flavor.compress.format(c=mark)
            + " ELSE "
            + mark
            + " END",
        }
        self._where = {"eq": "{c} = " + mark, "null": "{c} IS NULL", "notnull": "{c} IS NOT NULL"}

    def render(self, op: Op) -> tuple[str, list[Any]]:
        """The SQL and parameters of ``op``; raises :class:`BadOp` for unknown names."""
        if isinstance(op, Insert):
            return self._insert(op)
        convert = self._table(op.table)
        params: list[Any] = []
        set_shape: tuple[tuple[str, str], ...] = ()
        if isinstance(op, Update):
            set_shape = tuple(self._set_shape(convert, op.table, op.values, params))
        where_shape = tuple(self._where_shape(convert, op.table, op.where, params))
        kind = "delete" if isinstance(op, Delete) else "check" if not set_shape else "update"
        key = (kind, op.table, set_shape, where_shape)
        sql = self._sql.get(key)
        if sql is None:
            sql = self._sql[key] = self._sql_for(key)
        return sql, params

    def _insert(self, op: Insert) -> tuple[str, list[Any]]:
        # Inserts dominate bulk loads: SQL and converters are cached per column list.
        key = (op.table, tuple(op.values))
        cached = self._inserts.get(key)
        if cached is None:
            convert = self._table(op.table)
            for column in key[1]:
                self._column(convert, op.table, column)
            sql = self._sql_for(("insert", *key))
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
            raise BadOp(f"op names unknown table {table!r}")
        return convert

    def _column(
        self, convert: Mapping[str, Convert | None], table: str, column: str
    ) -> Convert | None:
        """How ``column`` of ``table`` stores a value; raises :class:`BadOp` if none."""
        if column not in convert:
            raise BadOp(f"op names unknown column {table}.{column}")
        return convert[column]

    def _value(self, convert: Mapping[str, Convert | None], table: str, column: str, v: Any) -> Any:
        fn = self._column(convert, table, column)
        return v if v is None or fn is None else fn(v)

    def _set_shape(
        self,
        convert: Mapping[str, Convert | None],
        table: str,
        values: Mapping[str, Any],
        params: list[Any],
    ) -> list[tuple[str, str]]:
        shape = []
        for column, value in values.items():
            if isinstance(value, Increment):
                if value.limit is None:
                    shape.append((column, "inc"))
                    params.append(value.by)
                else:
                    shape.append((column, "inc_upto"))
                    params.extend((value.limit - value.by, value.limit, value.by))
            elif isinstance(value, Greatest):
                shape.append((column, "max"))
                stored = self._value(convert, table, column, value.value)
                params.extend((stored, stored))
            elif isinstance(value, IfNull):
                shape.append((column, "ifnull"))
                params.append(self._value(convert, table, column, value.value))
            elif isinstance(value, Compress | Decompress):
                self._column(convert, table, column)
                shape.append((column, "compress" if isinstance(value, Compress) else "decompress"))
            elif isinstance(value, TextForTier):
                self._column(convert, table, column)
                shape.append((column, "tiertext"))
                params.extend((value.text, value.text))
            elif isinstance(value, Decayed):
                self._column(convert, table, value.rate_column)
                shape.append((column, f"decay:{value.rate_column}"))
                params.extend((value.days, value.days))
            else:
                shape.append((column, "set"))
                params.append(self._value(convert, table, column, value))
        return shape

    def _where_shape(
        self,
        convert: Mapping[str, Convert | None],
        table: str,
        where: Mapping[str, Any],
        params: list[Any],
    ) -> list[tuple[str, str]]:
        shape = []
        for column, value in where.items():
            fn = self._column(convert, table, column)
            if value is None:
                shape.append((column, "null"))
            elif value is NOT_NULL:
                shape.append((column, "notnull"))
            else:
                shape.append((column, "eq"))
                params.append(value if fn is None else fn(value))
        return shape

    def _assignment(self, column: str, kind: str) -> str:
        kind, _, rate = kind.partition(":")
        return self._set[kind].format(c=quote(column), r=quote(rate) if rate else "")

    def _sql_for(self, key: tuple[Any, ...]) -> str:
        kind, table = key[0], quote(key[1])
        if kind == "insert":
            columns = key[2]
            marks = ", ".join([self.flavor.placeholder] * len(columns))
            return f"INSERT INTO {table} ({', '.join(map(quote, columns))}) VALUES ({marks})"
        where = " AND ".join(self._where[k].format(c=quote(c)) for c, k in key[3]) or "1 = 1"
        if kind == "check":
            return f"SELECT 1 FROM {table} WHERE {where} LIMIT 1"
        if kind == "delete":
            return f"DELETE FROM {table} WHERE {where}"
        sets = ", ".join(self._assignment(c, k) for c, k in key[2])
        return f"UPDATE {table} SET {sets} WHERE {where}"
