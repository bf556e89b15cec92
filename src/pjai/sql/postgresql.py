"""The PostgreSQL backend of the SQL primary (psycopg 3 through SQLAlchemy's pool).

Statements of a projection batch go through psycopg's pipeline mode: sent together,
answered together, so a batch costs one round trip instead of one per statement. A long
run of inserts into one table (a bulk load, a batched commit) goes as ``COPY``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import errors as pg
from psycopg.types.json import Jsonb
from sqlalchemy import Connection, text
from sqlalchemy import exc as sa

from pjai.errors import (
    MaterializationError,
    PjaiError,
    SqlError,
    SqlSchemaMissingError,
    SqlUnavailableError,
)
from pjai.schema.ops import Op
from pjai.schema.render import Flavor, plain_text
from pjai.schema.types import CompressibleText, JsonDocument, Timestamp
from pjai.schema.violations import duplicate_row_error, violation_error
from pjai.sql.backend import Statement, driver_error, matched

__all__ = ["POSTGRESQL", "PostgresBackend"]

_KEY_COLUMNS = re.compile(r"Key \((?P<columns>[\w, ]+)\)=")
"""The key columns in PostgreSQL's detail of a unique violation: ``Key (id)=(x) ...``."""


def _utc(value: datetime) -> datetime:
    # In UTC, as the SQLite backends store times; a time that has no UTC form in
    # Python's range raises OverflowError, which refuses the event on every backend.
    return value.astimezone(UTC)


POSTGRESQL = Flavor(
    "postgresql",
    "%s",
    "greatest",
    # psycopg adapts booleans itself; JSON needs saying, and long text is compressed
    # by PostgreSQL (TOAST), so compressed text is stored as text.
    ((Timestamp, _utc), (JsonDocument, Jsonb), (CompressibleText, plain_text)),
)


COPY_ROWS = 64
"""A run of at least this many inserts into one table goes as ``COPY``, not ``INSERT``s."""

_INSERT = re.compile(r"INSERT INTO (?P<into>\S+ \([^)]*\)) VALUES \(")


def _copy_sql(insert: str) -> str | None:
    """The ``COPY ... FROM STDIN`` that loads what the rendered ``insert`` inserts."""
    found = _INSERT.match(insert)
    return None if found is None else f"COPY {found['into']} FROM STDIN"


def _pipelined(conn: psycopg.Connection[Any], statements: Sequence[Statement]) -> list[int]:
    """Run ``statements`` in one round trip (psycopg's pipeline mode)."""
    if not statements:
        return []
    cursors = []
    with conn.pipeline():
        for sql, rows, _check in statements:
            if len(rows) == 1:
                cursors.append(conn.execute(sql, rows[0], prepare=True))
            else:
                cursor = conn.cursor()
                cursor.executemany(sql, rows)
                cursors.append(cursor)
    return [
        matched(cursor, check)
        for cursor, (_sql, _rows, check) in zip(cursors, statements, strict=True)
    ]


class PostgresBackend:
    """PostgreSQL through psycopg 3."""

    name = "postgresql"
    flavor = POSTGRESQL
    errors: tuple[type[BaseException], ...] = (psycopg.Error,)
    # Text with a lone surrogate fails to encode before it reaches PostgreSQL; a time
    # out of range has no UTC form.
    value_errors: tuple[type[BaseException], ...] = (ValueError, OverflowError)

    def run(self, dbapi_connection: Any, statements: Sequence[Statement]) -> list[int]:
        conn: psycopg.Connection[Any] = dbapi_connection
        answers: list[int] = []
        piped: list[Statement] = []
        for statement in statements:
            sql, rows, _check = statement
            if len(rows) < COPY_ROWS or (copy := _copy_sql(sql)) is None:
                piped.append(statement)
                continue
            answers += _pipelined(conn, piped)
            piped = []
            with conn.cursor() as cursor, cursor.copy(copy) as data:
                for row in rows:
                    data.write_row(row)
            answers.append(len(rows))
        return answers + _pipelined(conn, piped)

    def run_many(self, dbapi_connection: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        conn: psycopg.Connection[Any] = dbapi_connection
        with conn.cursor() as cursor:
            cursor.executemany(sql, rows)

    def command(self, dbapi_connection: Any, sql: str) -> None:
        # Outside a pipeline and unprepared: psycopg answers a ROLLBACK TO by dropping
        # every prepared statement, and in a pipeline it would drop them only after
        # preparing the next one, which then "does not exist".
        conn: psycopg.Connection[Any] = dbapi_connection
        conn.execute(sql, prepare=False)

    def in_transaction(self, dbapi_connection: Any) -> bool:
        conn: psycopg.Connection[Any] = dbapi_connection
        return conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    def rejection(self, error: BaseException, event: str, op: Op) -> MaterializationError | None:
        cause = driver_error(error)
        if isinstance(
            cause, psycopg.DataError | pg.ProgramLimitExceeded | ValueError | OverflowError
        ):
            # NUL in text, a number or time out of the column's range, bad encoding, a
            # value past one of PostgreSQL's limits (an index row, a tsvector).
            return MaterializationError(
                event, f"PostgreSQL cannot store a value of {op.table}: {cause}"
            )
        if not isinstance(cause, pg.IntegrityError):
            return None
        diag = cause.diag
        if isinstance(cause, pg.UniqueViolation):
            key = _KEY_COLUMNS.match(diag.message_detail or "")
            if key is not None:
                return duplicate_row_error(event, op, key["columns"].split(", "))
            return MaterializationError(
                event, f"{op.table} already has that row ({diag.message_detail})"
            )
        if isinstance(cause, pg.ForeignKeyViolation):
            return violation_error(event, op, "foreign key", cause)
        if isinstance(cause, pg.CheckViolation):
            return violation_error(event, op, "check", diag.constraint_name)
        if isinstance(cause, pg.NotNullViolation):
            return violation_error(event, op, "not null", diag.column_name or "?")
        return violation_error(event, op, "other", cause)

    def translate(self, error: BaseException, doing: str) -> PjaiError:
        cause = driver_error(error)
        unreachable = isinstance(cause, psycopg.OperationalError | pg.AdminShutdown)
        if (unreachable and not isinstance(cause, pg.ProgramLimitExceeded)) or isinstance(
            error, sa.TimeoutError | sa.DisconnectionError
        ):
            return SqlUnavailableError(f"{doing}: PostgreSQL is unavailable ({cause})")
        if isinstance(cause, pg.UndefinedTable) and "pjai_" in str(cause):
            return SqlSchemaMissingError(
                f"{doing}: the PostgreSQL database has no PJai tables (made again?): "
                "restore it, and PJai catches it up from where the restore left it; or "
                f"open PJai again to set it up anew and fill it ({cause})"
            )
        return SqlError(f"{doing}: {cause}")

    def database_bytes(self, conn: Connection) -> int:
        return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
