"""Column types shared by every backend, and the storage form of their values.

Timestamps are timezone-aware UTC datetimes in Python. SQLite stores them as fixed-width
ISO-8601 text (``2026-11-26T08:25:02.123456+00:00``), which sorts in time order, so
range queries work on the text; PostgreSQL stores ``timestamptz``. JSON columns hold
msgspec-encoded text.

Text compares and sorts by code point on every backend: SQLite's default (``BINARY``)
does so, and PostgreSQL's text columns declare the collation ``"C"``
(:data:`CodePointString`, :data:`CodePointText`), which does so for UTF-8 whatever the
database's own collation is (``en_US.UTF-8`` puts ``alice`` before ``Bob``).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeAlias, overload

import uuid_utils
from sqlalchemy import JSON, DateTime, Dialect, Select, String, Text
from sqlalchemy.types import TypeDecorator, TypeEngine, UserDefinedType

__all__ = [
    "CODE_POINT_COLLATION",
    "AnySelect",
    "CodePointString",
    "CodePointText",
    "CompressibleText",
    "JsonDocument",
    "Progress",
    "Timestamp",
    "as_datetime",
    "compress_text",
    "from_iso",
    "new_id",
    "read_text",
    "to_iso",
    "utc_now",
]

Progress: TypeAlias = Callable[[int, int], object]
"""Called as ``progress(done, total)`` during long work (rebuilds, imports, replays)."""

AnySelect: TypeAlias = Select[*tuple[Any, ...]]
"""A SQLAlchemy ``select()`` of any columns."""

# The DDL type names SQLite reports for these columns (cursor description decltype);
# the store converts values read from such columns back to Python types.
SQLITE_DATETIME = "DATETIME"
SQLITE_JSON = "JSON"
SQLITE_BOOLEAN = "BOOLEAN"


class _SqliteDeclared(UserDefinedType[str]):
    """A SQLite column declared ``decltype``, which the store converts values by."""

    cache_ok = True

    def __init__(self, decltype: str) -> None:
        self.decltype = decltype

    def get_col_spec(self, **kw: Any) -> str:
        return self.decltype


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def new_id() -> str:
    """A new globally unique, time-ordered id (UUIDv7 text)."""
    return str(uuid_utils.uuid7())


_recent_iso: list[tuple[datetime | None, str]] = [(None, ""), (None, "")]


def to_iso(value: datetime) -> str:
    """A timezone-aware datetime as PJai's fixed-width UTC ISO-8601 text."""
    # One commit stamps the same datetime object on many columns and events, between
    # which a row's own times come: the last two texts are kept.
    # (Each slot is read once, as a pair, so that threads never mix two pairs.)
    recent = _recent_iso
    first, second = recent[0], recent[1]
    if value is first[0]:
        return first[1]
    if value is second[0]:
        return second[1]
    if value.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no timezone; PJai stores UTC times")
    utc = value if value.tzinfo is UTC else value.astimezone(UTC)
    text = utc.isoformat(timespec="microseconds")
    recent[1], recent[0] = first, (value, text)
    return text


_parsed: dict[str, datetime] = {}


def from_iso(text: str) -> datetime:
    """Parse PJai's ISO-8601 text back to an aware UTC datetime."""
    # Stored times repeat (created_at = updated_at, one commit's events share a time)
    # and datetimes are immutable, so parsed values are kept for reuse.
    value = _parsed.get(text)
    if value is None:
        value = datetime.fromisoformat(text)
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        if len(_parsed) >= 65_536:
            _parsed.clear()
        _parsed[text] = value
    return value


@overload
def as_datetime(value: str | datetime) -> datetime: ...
@overload
def as_datetime(value: None) -> None: ...
def as_datetime(value: str | datetime | None) -> datetime | None:
    """A time as a query returned it, as a datetime: a raw read of the store gives
    PJai's ISO text, SQL a datetime; ``None`` stays ``None``."""
    return from_iso(value) if isinstance(value, str) else value


class Timestamp(TypeDecorator[datetime]):
    """Aware UTC datetime: ISO-8601 text on SQLite, ``timestamptz`` on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(_SqliteDeclared(SQLITE_DATETIME))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return to_iso(value)
        return value

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        if dialect.name == "postgresql":
            # psycopg reads timestamptz as aware datetimes, in the session's time zone
            # (PGTZ, the server's or the role's setting): PJai's times are UTC.
            return _in_utc
        return super().result_processor(dialect, coltype)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            return from_iso(value)
        if isinstance(value, datetime):
            return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        raise TypeError(f"unexpected stored timestamp {value!r}")


def _in_utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


CODE_POINT_COLLATION = "C"
"""PostgreSQL's collation that compares UTF-8 text by code point, as SQLite does."""

CodePointString: TypeEngine[str] = String().with_variant(
    String(collation=CODE_POINT_COLLATION), "postgresql"
)
"""A ``VARCHAR`` column (ids, kinds, short codes) compared by code point on every backend."""

CodePointText: TypeEngine[str] = Text().with_variant(
    Text(collation=CODE_POINT_COLLATION), "postgresql"
)
"""A ``TEXT`` column (names, titles, content) compared by code point on every backend."""

SQLITE_ZTEXT = "ZTEXT"


def compress_text(text: str) -> bytes:
    """Text as PJai stores it compressed (zlib)."""
    return zlib.compress(text.encode(), 6)


def read_text(value: Any) -> Any:
    """A stored text column's value: compressed bytes are inflated back to text."""
    if isinstance(value, bytes | memoryview):
        return zlib.decompress(value).decode()
    return value


class CompressibleText(TypeDecorator[str]):
    """Text that PJai may store compressed (cold memories); always read back as text.

    SQLite holds it as TEXT or as a zlib BLOB; PostgreSQL holds text, which it compresses
    itself (TOAST) when long, compared by code point (:data:`CODE_POINT_COLLATION`).
    """

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(_SqliteDeclared(SQLITE_ZTEXT))
        # Not adapted by the dialect: psycopg's adaptation of Text is a string type
        # that the DDL would declare VARCHAR.
        return Text(collation=CODE_POINT_COLLATION)

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        if dialect.name == "postgresql":
            return None  # PostgreSQL keeps text as text
        return super().result_processor(dialect, coltype)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else str(read_text(value))


class JsonDocument(TypeDecorator[Any]):
    """A JSON value: ``JSON`` text on SQLite, ``jsonb`` on PostgreSQL."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB  # only when PostgreSQL is in use

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())
