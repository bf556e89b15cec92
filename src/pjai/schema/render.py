"""Materializer ops as SQL text, per backend.

Each backend that holds PJai's tables (the store's SQLite state, the SQL primary on
SQLite or PostgreSQL) renders the same ops with its own :class:`Flavor`: placeholder,
spelling of "greatest", and how values are stored. Statements are cached per op shape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import Boolean, MetaData, Table

from pjai.errors import PjaiError
from pjai.schema.expressions import fold_case, message_memory_id
from pjai.schema.ops import (
    NOT_NULL,
    Compress,
    Compressed,
    Decayed,
    Decompress,
    Delete,
    Greatest,
    IfNull,
    Increment,
    Insert,
    Missing,
    Op,
    TextForTier,
    Update,
)
from pjai.schema.search import cut_cjk
from pjai.schema.types import (
    CompressibleText,
    JsonDocument,
    Timestamp,
    compress_text,
    read_text,
    to_iso,
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

Convert = Callable[[Any], Any]
_json = msgspec.json.Encoder()


def _to_json(value: Any) -> str:
    return _json.encode(value).decode()


def _sqlite_stored_text(value: Any) -> Any:
    return compress_text(value.text) if isinstance(value, Compressed) else value


def plain_text(value: Any) -> Any:
    """A text value for a backend that compresses by itself: the text as is."""
    return value.text if isinstance(value, Compressed) else value


@dataclass(frozen=True, slots=True)
class Flavor:
    """How one backend spells op statements and stores Python values.

    ``stores`` pairs column types with what turns a Python value into the value stored
    in a column of that type (the first pair whose type the column's is). ``compress``
    and ``decompress`` spell a column's value turned into (or out of) its compressed
    form, ``{c}`` standing for the column.
    """

    name: str
    placeholder: str
    greatest: str
    stores: tuple[tuple[type[Any], Convert], ...]
    compress: str = "{c}"
    decompress: str = "{c}"

    def converter(self, column_type: object) -> Convert | None:
        """What stores a value in a column of ``column_type``; ``None``: the value as is."""
        return next(
            (convert for kind, convert in self.stores if isinstance(column_type, kind)), None
        )


SQLITE = Flavor(
    "sqlite",
    "?",
    "max",
    (
        (Timestamp, to_iso),
        (JsonDocument, _to_json),
        (Boolean, int),
        (CompressibleText, _sqlite_stored_text),
    ),
    compress="pjai_compress({c})",
    decompress="pjai_text({c})",
)
"""SQLite through apsw or sqlite3: ISO-8601 text times, 0/1 booleans, JSON text, zlib
BLOBs for compressed text (with PJai's SQL functions, see :func:`sqlite_functions`)."""


def _sqlite_message_memory_id(value: Any) -> Any:
    return message_memory_id(value) if isinstance(value, str) else value


def _sqlite_compress(value: Any) -> Any:
    return compress_text(value) if isinstance(value, str) else value


SQLITE_TUNING = (
    # Checkpoint every ~40 MB of WAL instead of 4 MB: index pages that many small commits
    # dirty again and again are copied to the database once, and a commit of 1,000
    # memories (which dirties more than 4 MB of pages) does not checkpoint every time.
    "PRAGMA wal_autocheckpoint=10000",
    f"PRAGMA journal_size_limit={64 * 1024 * 1024}",
    # A 16 MiB page cache instead of 2: each memory goes into five B-trees at scattered
    # places, and past ~100,000 memories their pages no longer fit in 2.
    f"PRAGMA cache_size=-{16 * 1024}",
)
"""The settings every connection to one of PJai's SQLite databases (the store, an SQLite
SQL primary) starts with."""


def sqlite_functions() -> dict[str, Callable[[Any], Any]]:
    """The SQL functions PJai's SQLite databases need: register each with one argument."""
    return {
        "pjai_compress": _sqlite_compress,
        "pjai_lower": fold_case,
        "pjai_message_memory_id": _sqlite_message_memory_id,
        "pjai_text": read_text,
        "pjai_words": cut_cjk,
    }


def is_check(op: Op) -> bool:
    """Whether ``op`` only checks that a row exists (an update without values)."""
    return isinstance(op, Update) and not op.values


def writes(ops: Sequence[Op]) -> int:
    """How many of ``ops`` write."""
    return sum(1 for op in ops if not is_check(op))


Statement = tuple[str, list[Sequence[Any]], bool]
"""Rendered SQL, its rows of parameters (several only for a run of inserts sent as one
batch), and whether it is a check (a SELECT of one row)."""


@dataclass(frozen=True, slots=True)
class Batch:
    """Ops planned as few statements: see :func:`batched`."""

    statements: list[Statement]
    answers: list[int | None]
    """Per op, the statement whose matched rows answer it (``None`` for an insert)."""

    def unmatched(self, ops: Sequence[Op], matched: Sequence[int]) -> tuple[int, Missing] | None:
        """The first op that had to match a row and matched none: its index and why."""
        for index, (op, at) in enumerate(zip(ops, self.answers, strict=True)):
            if isinstance(op, Insert) or at is None or matched[at] or op.missing is None:
                continue
            return index, op.missing
        return None


def batched(ops: Sequence[Op], render: Callable[[Op], tuple[str, list[Any]]]) -> Batch:
    """Plan ``ops`` so that running the statements in order means running the ops one
    by one.

    Consecutive inserts with the same SQL go as one batch, and a check of another
    table may run before that batch (an insert cannot change what it reads). A check
    asked again before any update or delete takes the first one's answer: a missing
    row fails the ops at the first asking.
    """
    statements: list[Statement] = []
    answers: list[int | None] = []
    asked: dict[tuple[str, tuple[Any, ...]], int] = {}
    run: tuple[str, str, list[Sequence[Any]]] | None = None  # table, SQL, rows
    for op in ops:
        sql, params = render(op)
        if isinstance(op, Insert):
            if run is None or run[1] != sql:
                if run is not None:
                    statements.append((run[1], run[2], False))
                run = (op.table, sql, [])
            run[2].append(params)
            answers.append(None)
            continue
        check = is_check(op)
        key = (sql, tuple(params))
        if not check:
            asked.clear()  # an update or delete may change any check's answer
        elif key in asked:
            answers.append(asked[key])
            continue
        if run is not None and (not check or run[0] == op.table):
            statements.append((run[1], run[2], False))
            run = None
        if check:
            asked[key] = len(statements)
        answers.append(len(statements))
        statements.append((sql, [params], check))
    if run is not None:
        statements.append((run[1], run[2], False))
    return Batch(statements, answers)


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
