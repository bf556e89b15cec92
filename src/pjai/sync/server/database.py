"""The sync server's database as one resource: its event log, tokens, audit trail and
the keys channel's keys.

:meth:`ServerDatabase.open` takes a database URL (SQLite or PostgreSQL) or the path of
an SQLite file (by default :data:`SERVER_FILE` in a data directory), creates the
tables it lacks and owns the connection pool until :meth:`ServerDatabase.close`.
"""

from __future__ import annotations

from pathlib import Path

from pjai.resource import Resource
from pjai.sql.engine import PoolConfig, create_sql_engine, redacted, sqlite_url
from pjai.sync.server.audit import AuditTrail
from pjai.sync.server.keys import SqlKeys
from pjai.sync.server.sqllog import SqlLog
from pjai.sync.server.tokens import TokenStore

__all__ = ["SERVER_FILE", "ServerDatabase", "database_url"]

SERVER_FILE = "sync-server.db"
"""The sync server's SQLite database in a data directory, unless a URL is given."""

POOL = PoolConfig(size=10, overflow=20, pre_ping=False)
"""No pre-ping: it would cost a round trip per push. A dead connection fails that one
request with ``server_error`` (the client retries) and the pool drops it."""


def database_url(database: str | Path) -> str:
    """The URL of ``database``: a URL as given, a path as an SQLite file."""
    if isinstance(database, Path):
        return sqlite_url(database)
    return database


class ServerDatabase(Resource):
    """A sync server's database: :attr:`log`, :attr:`tokens`, :attr:`audit` and
    :attr:`keys` share its pool, which :meth:`close` disposes of."""

    def __init__(self, log: SqlLog, tokens: TokenStore, audit: AuditTrail) -> None:
        self.log = log
        self.tokens = tokens
        self.audit = audit
        self.engine = log.engine
        self.keys = SqlKeys(self.engine)

    @classmethod
    def open(cls, database: str | Path, *, max_store_bytes: int | None = None) -> ServerDatabase:
        """Open ``database`` (a URL, or an SQLite file's path), creating missing tables;
        its log holds at most ``max_store_bytes`` of records a store (``None``: no
        limit)."""
        engine = create_sql_engine(database_url(database), POOL)
        try:
            log = SqlLog(engine, max_store_bytes)
            return cls(log, TokenStore(engine), AuditTrail(engine))
        except BaseException:
            engine.dispose()
            raise

    @property
    def url(self) -> str:
        """The database's URL, password included."""
        return self.engine.url.render_as_string(hide_password=False)

    @property
    def display_url(self) -> str:
        """The database's URL with any password hidden, for logs and messages."""
        return redacted(self.url)

    @property
    def postgres(self) -> bool:
        """Whether it is PostgreSQL, where several server processes may share it."""
        return self.engine.dialect.name == "postgresql"

    @property
    def backend_id(self) -> str:
        """Identifies this database's log; a new one means the server's history was reset."""
        return self.log.backend_id

    def close(self) -> None:
        """Finish rewriting deleted keys out of the files, then close the pool's
        connections; the database is not used after."""
        self.keys.flush()
        self.engine.dispose()
