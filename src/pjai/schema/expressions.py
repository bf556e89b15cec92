"""SQL expressions PJai's queries share, compiled for whichever database runs them.

A query built from these runs unchanged on the reactive store (SQLite), the embedded
SQL primary (SQLite) and PostgreSQL: each expression renders the SQL its dialect
understands. Times are read in UTC on every backend, whatever the session's time zone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, Literal, TypeVar, get_args

from sqlalchemy import Boolean, Integer, String, case, exists, extract, func, literal, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.visitors import InternalTraversal

from pjai.schema.fields import ID_MAX_LENGTH

__all__ = [
    "BUCKET_UNITS",
    "IDS_PER_QUERY",
    "BucketUnit",
    "contains_text",
    "count_if",
    "dialect_name",
    "fold_case",
    "has_tag",
    "importance_decile",
    "in_parts",
    "memory_id_of_message",
    "message_memory_id",
    "time_bucket",
    "utc_hour",
]

BucketUnit = Literal["hour", "day", "month"]
"""The stretches :func:`time_bucket` keys times by."""

BUCKET_UNITS: tuple[BucketUnit, ...] = get_args(BucketUnit)

_STRFTIME: dict[str, str] = {"hour": "%Y-%m-%dT%H:00", "day": "%Y-%m-%d", "month": "%Y-%m"}
_TO_CHAR: dict[str, str] = {"hour": 'YYYY-MM-DD"T"HH24:00', "day": "YYYY-MM-DD", "month": "YYYY-MM"}

IDS_PER_QUERY = 5_000
"""The most ids one query binds: each is a parameter, and SQLite takes 32,766 of them,
PostgreSQL 65,535."""

_T = TypeVar("_T")


def in_parts(items: list[_T], size: int = IDS_PER_QUERY) -> list[list[_T]]:
    """``items`` in consecutive parts of at most ``size``, one query's worth each."""
    return [items[start : start + size] for start in range(0, len(items), size)]


def count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """An aggregate: how many rows meet ``condition`` (0 when none, never NULL)."""
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


_Spell = Callable[..., str]


def _compiles_from_arguments(
    function: type[FunctionElement[Any]], *dialects: str
) -> Callable[[_Spell], _Spell]:
    """Compile ``function`` (for ``dialects``, or for any dialect) with the decorated
    spelling, which takes the SQL text of each of the function's arguments."""

    def register(spell: _Spell) -> _Spell:
        def compile_(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
            return spell(
                *(compiler.process(argument, **kw) for argument in element.clauses.clauses)
            )

        compiles(function, *dialects)(compile_)
        return spell

    return register


# Lower-case class names, as SQLAlchemy's own SQL functions (func.count, ...).


class has_tag(FunctionElement[bool]):
    """``has_tag(tags, tag)``: whether a JSON array of tags holds ``tag``."""

    type = Boolean()
    inherit_cache = True
    name = "has_tag"

    def __init__(self, tags: ColumnElement[Any], tag: str | ColumnElement[str]) -> None:
        super().__init__(tags, literal(tag, String) if isinstance(tag, str) else tag)


@compiles(has_tag)
def _has_tag_sqlite(element: has_tag, compiler: SQLCompiler, **kw: Any) -> str:
    tags, tag = element.clauses.clauses
    each = func.json_each(tags).table_valued("value")
    found = exists(select(literal(1)).select_from(each).where(each.c.value == tag))
    return compiler.process(found, **kw)


@compiles(has_tag, "postgresql")
def _has_tag_postgresql(element: has_tag, compiler: SQLCompiler, **kw: Any) -> str:
    tags, tag = element.clauses.clauses
    return compiler.process(tags.op("@>")(func.jsonb_build_array(tag)), **kw)


# Where str.lower() differs from PostgreSQL's lower(), which maps one character at a
# time: it makes two characters of a capital I with a dot (i and a combining dot) and
# the final sigma of a capital sigma that ends a word.
_ONE_BY_ONE_PAIRS = {"\u0130": "i", "\u03a3": "\u03c3"}
_ONE_BY_ONE = str.maketrans(_ONE_BY_ONE_PAIRS)


def fold_case(value: Any) -> Any:
    """Text in lower case as PostgreSQL's ``lower()`` makes it in a UTF-8 locale: every
    Unicode letter, one character at a time (``İ`` to ``i``; a capital sigma to the small
    one wherever it stands, never to the final one); any other value as it is. PJai's
    SQLite connections have it as ``pjai_lower``, since SQLite's own ``lower()`` folds
    only ASCII letters."""
    if not isinstance(value, str):
        return value
    return value.lower() if value.isascii() else value.translate(_ONE_BY_ONE).lower()


class contains_text(FunctionElement[bool]):
    """``contains_text(text, part)``: whether ``part`` occurs in ``text``, ignoring case
    (of every letter, not only ASCII ones: see :func:`fold_case`).

    ``part`` matches literally: ``%`` and ``_`` are not wildcards.
    """

    type = Boolean()
    inherit_cache = True
    name = "contains_text"


@_compiles_from_arguments(contains_text)
def _contains_text_sqlite(text: str, part: str) -> str:
    return f"instr(pjai_lower({text}), pjai_lower({part})) > 0"


def _utf8_text(text: str) -> str:
    # The characters as SQL that every server encoding parses: built from their UTF-8
    # bytes at run time, and only in a UTF-8 database (others cannot hold them all,
    # and their locales' lower() maps one character at a time already).
    return (
        "CASE WHEN current_setting('server_encoding') = 'UTF8' THEN "
        f"convert_from(CAST('\\x{text.encode().hex()}' AS bytea), 'UTF8') ELSE '' END"
    )


_FROM, _TO = (_utf8_text("".join(side)) for side in zip(*_ONE_BY_ONE_PAIRS.items(), strict=True))


@_compiles_from_arguments(contains_text, "postgresql")
def _contains_text_postgresql(text: str, part: str) -> str:
    # PJai's text columns compare by code point (collation "C"), under which lower()
    # folds ASCII letters only: case is folded as the database's own collation does,
    # one character at a time as fold_case() says. An ICU collation's lower() makes a
    # capital I with a dot two characters and a capital sigma ending a word the final
    # sigma, so those two are mapped first.
    folded = [
        f'lower(translate(({value}) COLLATE "default", {_FROM}, {_TO}))' for value in (text, part)
    ]
    return f"strpos({folded[0]}, {folded[1]}) > 0"


class utc_hour(FunctionElement[int]):
    """``utc_hour(time)``: the hour of the day (0-23) of a timestamp, in UTC."""

    type = Integer()
    inherit_cache = True
    name = "utc_hour"


@compiles(utc_hour)
def _utc_hour_sqlite(element: utc_hour, compiler: SQLCompiler, **kw: Any) -> str:
    (time,) = element.clauses.clauses
    return compiler.process(extract("hour", time), **kw)


@_compiles_from_arguments(utc_hour, "postgresql")
def _utc_hour_postgresql(time: str) -> str:
    return f"CAST(EXTRACT(HOUR FROM timezone('UTC', {time})) AS INTEGER)"


class time_bucket(ColumnElement[str]):
    """The UTC hour (``2026-01-31T23:00``), day (``2026-01-31``) or month of a timestamp."""

    type = String()
    inherit_cache = True
    # What the SQL compilation cache keys on; SQLAlchemy declares it a list.
    _traverse_internals = [  # noqa: RUF012
        ("time", InternalTraversal.dp_clauseelement),
        ("unit", InternalTraversal.dp_string),
    ]

    def __init__(self, time: ColumnElement[Any], unit: BucketUnit) -> None:
        if unit not in _STRFTIME:
            raise ValueError(f"time bucket unit {unit!r}: use hour, day or month")
        self.time = time
        self.unit = unit


@compiles(time_bucket)
def _time_bucket_sqlite(element: time_bucket, compiler: SQLCompiler, **kw: Any) -> str:
    # The format is part of the expression's text, not a parameter: GROUP BY repeats it.
    return f"strftime('{_STRFTIME[element.unit]}', {compiler.process(element.time, **kw)})"


@compiles(time_bucket, "postgresql")
def _time_bucket_postgresql(element: time_bucket, compiler: SQLCompiler, **kw: Any) -> str:
    time = compiler.process(element.time, **kw)
    return f"to_char(timezone('UTC', {time}), '{_TO_CHAR[element.unit]}')"


class importance_decile(FunctionElement[int]):
    """``importance_decile(importance)``: 0 for 0..0.1, ..., 9 for 0.9..1 (1 included)."""

    type = Integer()
    inherit_cache = True
    name = "importance_decile"


@_compiles_from_arguments(importance_decile)
def _decile_sqlite(importance: str) -> str:
    # SQLite's CAST truncates; its two-argument min() is the smaller value.
    return f"min(CAST({importance} * 10 AS INTEGER), 9)"


@_compiles_from_arguments(importance_decile, "postgresql")
def _decile_postgresql(importance: str) -> str:
    # PostgreSQL's CAST rounds, so floor() first. Not least(..., 9): it skips NULL, which
    # would give no importance (the row of a persona without memories) decile 9.
    return (
        f"CASE WHEN {importance} >= 0.9 THEN 9 ELSE CAST(floor({importance} * 10) AS INTEGER) END"
    )


class dialect_name(FunctionElement[str]):
    """``dialect_name()``: the name of the dialect the query was compiled for, as text."""

    type = String()
    inherit_cache = True
    name = "dialect_name"


@compiles(dialect_name)
def _dialect_name(element: dialect_name, compiler: SQLCompiler, **kw: Any) -> str:
    return f"'{compiler.dialect.name}'"


_MEMORY_SUFFIX = ":memory"
_HASHED_SUFFIX = ":memory-sha256"
_PLAIN_MAX = ID_MAX_LENGTH - len(_MEMORY_SUFFIX)


def message_memory_id(message_id: str) -> str:
    """The id of the memory a conversation message becomes: ``"<message id>:memory"``,
    or, for a message id too long for that to be an id (over 121 characters, as peers
    and imports may send), the SHA-256 of the message id in hex and ``":memory-sha256"``.
    The two forms never meet: only the first ends in ``:memory``. PJai's SQLite
    connections have it as ``pjai_message_memory_id``; queries use
    :class:`memory_id_of_message`."""
    if len(message_id) <= _PLAIN_MAX:
        return message_id + _MEMORY_SUFFIX
    return hashlib.sha256(message_id.encode()).hexdigest() + _HASHED_SUFFIX


class memory_id_of_message(FunctionElement[str]):
    """``memory_id_of_message(message_id)``: :func:`message_memory_id` in SQL, to join
    messages to the memories made of them."""

    type = String()
    inherit_cache = True
    name = "memory_id_of_message"


@_compiles_from_arguments(memory_id_of_message)
def _memory_id_sqlite(message_id: str) -> str:
    return f"pjai_message_memory_id({message_id})"


@_compiles_from_arguments(memory_id_of_message, "postgresql")
def _memory_id_postgresql(given: str) -> str:
    # The bytes hashed are the id's UTF-8, whatever the server's encoding.
    return (
        f"CASE WHEN char_length({given}) <= {_PLAIN_MAX} THEN {given} || '{_MEMORY_SUFFIX}' "
        f"ELSE encode(sha256(convert_to({given}, 'UTF8')), 'hex') || '{_HASHED_SUFFIX}' END"
    )
