"""Engines and connection pools for the SQL primary, from a URL."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from pjai.errors import ConfigError
from pjai.schema.busy import busy_handler
from pjai.schema.render import SQLITE_TUNING, sqlite_functions

__all__ = [
    "PRIMARY_FILE",
    "PoolConfig",
    "create_sql_engine",
    "default_url",
    "empty_sqlite_log",
    "redacted",
    "sqlite_file",
    "sqlite_url",
]

PRIMARY_FILE = "primary.db"


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """Connection pool settings; ``from_env`` reads ``PJAI_SQL_POOL_<FIELD>``.

    ``timeout_s`` is how long to wait for a pooled connection and, on SQLite, for the
    database lock before the primary counts as unavailable.
    """

    size: int = 5
    overflow: int = 10
    pre_ping: bool = True
    recycle_s: int = 1_800
    timeout_s: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PoolConfig:
        """Settings from the environment, defaults for what is not set."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in fields(cls):
            raw = env.get(f"PJAI_SQL_POOL_{spec.name.upper()}")
            if raw is None:
                continue
            try:
                if spec.type == "bool":
                    values[spec.name] = raw.strip().lower() in {"1", "true", "yes", "on"}
                else:
                    values[spec.name] = float(raw) if spec.type == "float" else int(raw)
            except ValueError as exc:
                raise ConfigError(
                    f"PJAI_SQL_POOL_{spec.name.upper()}={raw!r} is not a valid {spec.type}"
                ) from exc
        return cls(**values)


def default_url(data_dir: Path) -> str:
    """The embedded default: an SQLite primary inside the data directory."""
    return sqlite_url(data_dir / PRIMARY_FILE)


def sqlite_url(path: Path | str) -> str:
    """The URL of the SQLite file ``path``, whatever characters its path holds (a
    ``?`` or ``#`` would otherwise end the file's name)."""
    return URL.create("sqlite", database=str(path)).render_as_string()


def sqlite_file(url: str | URL) -> Path | None:
    """The file of an SQLite database ``url`` names; ``None`` for another database or
    one in memory."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def redacted(url: str) -> str:
    """The URL with any password hidden, for logs and reports."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid URL>"


def _json_text(value: Any) -> str:
    # The same compact encoding the store and the projection use, so that rows written
    # through SQLAlchemy (rebalance, import) are byte-equal to projected ones.
    return msgspec.json.encode(value).decode()


def _pooled_engine(
    url: URL, pool: PoolConfig, *, pre_ping: bool, connect_args: dict[str, Any]
) -> Engine:
    """An engine pooling connections as ``pool`` says, that stores JSON as PJai encodes it."""
    return create_engine(
        url,
        pool_size=pool.size,
        max_overflow=pool.overflow,
        pool_pre_ping=pre_ping,
        pool_recycle=pool.recycle_s,
        pool_timeout=pool.timeout_s,
        connect_args=connect_args,
        json_serializer=_json_text,
        json_deserializer=msgspec.json.decode,
    )


def create_sql_engine(url: str, pool: PoolConfig | None = None) -> Engine:
    """An engine for ``url``: SQLite (WAL, foreign keys, busy timeout) or PostgreSQL.

    PostgreSQL URLs use psycopg 3 (``postgresql+psycopg://``; a bare ``postgresql://``
    is read the same way).
    """
    pool = pool or PoolConfig()
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"{url!r} is not a database URL: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, pool)
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername in {"postgresql", "postgres"}:
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.get_driver_name() != "psycopg":
            raise ConfigError(f"{redacted(url)}: PJai talks to PostgreSQL through psycopg 3")
        return _pooled_engine(
            parsed, pool, pre_ping=pool.pre_ping, connect_args={"connect_timeout": 5}
        )
    raise ConfigError(f"{redacted(url)}: PJai's SQL primary is SQLite or PostgreSQL")


def _sqlite_engine(url: URL, pool: PoolConfig) -> Engine:
    database = url.database
    if not database or database == ":memory:":
        raise ConfigError("the SQL primary needs an SQLite file, not an in-memory database")
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = _pooled_engine(
        url,
        pool,
        # A file on this machine has no server connection to lose; no ping needed.
        pre_ping=False,
        connect_args={"check_same_thread": False, "timeout": pool.timeout_s},
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # PJai issues BEGIN itself (below), so that savepoints and locking behave.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(pool.timeout_s * 1000)}")
        _enter_wal(cursor, pool.timeout_s)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        for pragma in SQLITE_TUNING:
            cursor.execute(pragma)
        cursor.close()
        for name, function in sqlite_functions().items():
            dbapi_connection.create_function(name, 1, function, deterministic=True)

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # Writers take the lock up front: no deadlock upgrading a read lock later.
        mode = conn.get_execution_options().get("pjai_begin", "DEFERRED")
        if mode == "IMMEDIATE":
            _take_write_lock(conn.connection.driver_connection, pool.timeout_s)
        else:
            conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def empty_sqlite_log(engine: Engine, *, vacuum: bool = False, wait_s: float = 5.0) -> bool:
    """Copy an SQLite file's write-ahead log into it and empty the log, after a
    ``VACUUM`` with ``vacuum``, so that no older copy of a page stays in either file;
    whether the log was emptied (another connection still reading an older state keeps
    it; waited for up to ``wait_s``). Runs on the driver's own connection: PJai's engine
    begins a transaction for every statement, and VACUUM runs outside one."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if vacuum:
            cursor.execute("VACUUM")
        deadline = time.monotonic() + wait_s
        while True:
            busy = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            if not busy:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
    finally:
        raw.close()


def _take_write_lock(dbapi_connection: sqlite3.Connection, timeout_s: float) -> None:
    """Begin a transaction holding the write lock, waiting up to ``timeout_s`` for it
    the way the store's connections wait (:func:`~pjai.schema.busy.busy_handler`):
    SQLite's own wait, up to 100 ms between looks, let writers committing one after
    another keep the lock from a waiter for a second and more."""
    busy = busy_handler(timeout_s)
    dbapi_connection.execute("PRAGMA busy_timeout=0")  # the waiting is done here
    try:
        calls = 0
        while True:
            try:
                dbapi_connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or not busy(calls):
                    raise
                calls += 1
    finally:
        dbapi_connection.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")


def _enter_wal(cursor: Any, timeout_s: float) -> None:
    # Connections switching a new file to WAL together can find each other holding the
    # lock the switch needs; SQLite then answers "locked" at once rather than calling the
    # busy handler (waiting could deadlock), so the wait happens here.
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)
