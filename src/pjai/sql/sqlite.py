"""The SQLite backend of the SQL primary (sqlite3 through SQLAlchemy's pool).

Values are stored as the reactive store stores them (ISO-8601 text times, JSON text),
so the two SQLite databases compare byte for byte.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import exc as sa

from pjai.errors import MaterializationError, PjaiError, SqlError, SqlUnavailableError
from pjai.schema.ops import Op
from pjai.schema.render import SQLITE
from pjai.schema.violations import sqlite_constraint_error
from pjai.sql.backend import Statement, driver_error, matched
from pjai.sql.journal import journal

__all__ = ["SqliteBackend", "journal_head", "page_problems"]

LISTED = 20
"""How many problems :func:`page_problems` names."""

# sqlite3 reports both "cannot get at the database" and "bad SQL" as OperationalError.
_UNAVAILABLE = re.compile(
    r"locked|busy|unable to open|disk I/O|disk is full|readonly|no such file", re.I
)


class SqliteBackend:
    """SQLite through the sqlite3 module."""

    name = "sqlite"
    flavor = SQLITE
    errors: tuple[type[BaseException], ...] = (sqlite3.Error,)
    # An integer beyond 64 bits (OverflowError), text with a lone surrogate.
    value_errors: tuple[type[BaseException], ...] = (OverflowError, ValueError)

    def run(self, dbapi_connection: Any, statements: Sequence[Statement]) -> list[int]:
        cursor = dbapi_connection.cursor()
        answers: list[int] = []
        try:
            for sql, rows, check in statements:
                if len(rows) == 1:
                    cursor.execute(sql, rows[0])
                else:
                    cursor.executemany(sql, rows)
                answers.append(matched(cursor, check))
        finally:
            cursor.close()
        return answers

    def run_many(self, dbapi_connection: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.executemany(sql, rows)
        finally:
            cursor.close()

    def command(self, dbapi_connection: Any, sql: str) -> None:
        dbapi_connection.execute(sql)

    def in_transaction(self, dbapi_connection: Any) -> bool:
        return bool(dbapi_connection.in_transaction)

    def rejection(self, error: BaseException, event: str, op: Op) -> MaterializationError | None:
        cause = driver_error(error)
        if isinstance(cause, sqlite3.IntegrityError):
            return sqlite_constraint_error(event, op, str(cause))
        if isinstance(cause, sqlite3.DataError | OverflowError | ValueError):
            return MaterializationError(
                event, f"SQLite cannot store a value of {op.table}: {cause}"
            )
        return None

    def translate(self, error: BaseException, doing: str) -> PjaiError:
        cause = driver_error(error)
        if isinstance(error, sa.TimeoutError) or (
            isinstance(cause, sqlite3.OperationalError) and _UNAVAILABLE.search(str(cause))
        ):
            return SqlUnavailableError(f"{doing}: the SQLite primary is unavailable ({cause})")
        return SqlError(f"{doing}: {cause}")

    def database_bytes(self, conn: Connection) -> int:
        database = conn.engine.url.database or ""
        return sum(
            os.path.getsize(path)
            for path in (database, f"{database}-wal")
            if path and os.path.exists(path)
        )


def page_problems(path: str | os.PathLike[str]) -> list[str]:
    """What SQLite finds wrong with the pages of the SQL primary's file ``path``
    (``PRAGMA quick_check``; ``[]``: nothing), read without changing it.

    Read through the sqlite3 module, as the engine reads the file: a second SQLite
    library in the process (the store's) would share its locks and shared memory badly.
    """
    try:
        conn = _read_only(path)
    except sqlite3.Error as exc:
        return [f"the file cannot be opened ({exc})"]
    try:
        found = [str(row[0]) for row in conn.execute(f"PRAGMA quick_check({LISTED})")]
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    finally:
        conn.close()
    return [] if found == ["ok"] else found


def journal_head(path: str | os.PathLike[str]) -> int | None:
    """The last global position the SQL journal in the SQLite file ``path`` holds, or
    ``None`` when it cannot be read (a damaged file), read without changing the file."""
    try:
        conn = _read_only(path)
    except sqlite3.Error:
        return None
    try:
        row = conn.execute(f"SELECT coalesce(max(global_seq), 0) FROM {journal.name}").fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return int(row[0])


def _read_only(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """A connection that reads the file ``path`` and never writes it."""
    return sqlite3.connect(Path(path).absolute().as_uri() + "?mode=ro", uri=True)
