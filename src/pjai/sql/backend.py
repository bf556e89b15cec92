"""The contract each SQL backend implements, and picking one for an engine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import Connection, Engine
from sqlalchemy import exc as sa

from pjai.errors import ConfigError, MaterializationError, PjaiError
from pjai.schema.ops import Op
from pjai.schema.render import Flavor, Statement

__all__ = ["Backend", "Statement", "backend_for", "driver_error", "matched"]


class Backend(Protocol):
    """What the SQL writer needs from a database driver."""

    name: str
    flavor: Flavor
    errors: tuple[type[BaseException], ...]
    """The driver's exception classes."""
    value_errors: tuple[type[BaseException], ...]
    """Python errors the driver raises for a value it cannot send (an event's fault)."""

    def run(self, dbapi_connection: Any, statements: Sequence[Statement]) -> list[int]:
        """Execute in order, a statement of several parameter rows as one batch; per
        statement the rows it matched (a check: 0 or 1).

        Raises the driver's error if a statement fails; the transaction must then be
        rolled back to before the first statement.
        """

    def run_many(self, dbapi_connection: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Execute one statement for each parameter row, as one batch."""

    def command(self, dbapi_connection: Any, sql: str) -> None:
        """Execute a transaction-control statement (``SAVEPOINT``, ``ROLLBACK TO``...)."""

    def in_transaction(self, dbapi_connection: Any) -> bool:
        """Whether a transaction is open: a database may end one itself on an error (SQLite
        on a full disk), taking its savepoints with it."""

    def rejection(self, error: BaseException, event: str, op: Op) -> MaterializationError | None:
        """The event's fault in ``error``, if that is what it is: a constraint it violated,
        or a value the database cannot store."""

    def translate(self, error: BaseException, doing: str) -> PjaiError:
        """Any other driver error as a PJai error."""

    def database_bytes(self, conn: Connection) -> int:
        """Bytes the database takes on disk."""


def matched(cursor: Any, check: bool) -> int:
    """What a statement just run on ``cursor`` answers (see :meth:`Backend.run`): for a
    check, whether it found its row; otherwise the rows it changed (0 when the driver
    cannot say)."""
    return (cursor.fetchone() is not None) if check else max(cursor.rowcount, 0)


def driver_error(error: BaseException) -> BaseException:
    """The driver's own exception inside a SQLAlchemy one, or ``error`` itself."""
    if isinstance(error, sa.DBAPIError) and error.orig is not None:
        return error.orig
    return error


def backend_for(engine: Engine) -> Backend:
    """The backend of ``engine``'s dialect."""
    if engine.dialect.name == "sqlite":
        from pjai.sql.sqlite import SqliteBackend

        return SqliteBackend()
    if engine.dialect.name == "postgresql":
        from pjai.sql.postgresql import PostgresBackend

        return PostgresBackend()
    raise ConfigError(f"no PJai backend for the {engine.dialect.name} dialect")
