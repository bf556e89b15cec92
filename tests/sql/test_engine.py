"""The SQLite primary's engine: a writer waits for another connection's write lock the
way the store's connections do."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pjai.errors import SqlUnavailableError
from pjai.schema import SCHEMA
from pjai.sql.engine import PoolConfig, sqlite_url
from pjai.sql.shards import ShardSet
from pjai.sql.writer import SqlWriter
from tests.helpers import record_busy_looks


@pytest.fixture
def primary(tmp_path: Path) -> Path:
    """An SQLite primary with PJai's tables."""
    path = tmp_path / "primary.db"
    shards = ShardSet([sqlite_url(path)], SCHEMA, PoolConfig())
    shards.upgrade(())
    shards.dispose()
    return path


@contextmanager
def _writer(path: Path, pool: PoolConfig) -> Iterator[SqlWriter]:
    shards = ShardSet([sqlite_url(path)], SCHEMA, pool)
    try:
        yield shards.shards[0].writer
    finally:
        shards.dispose()


@pytest.fixture
def writer(primary: Path) -> Iterator[SqlWriter]:
    with _writer(primary, PoolConfig()) as one:
        yield one


def _locked(path: Path) -> sqlite3.Connection:
    """Another connection, holding ``path``'s write lock."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


def test_a_writer_waiting_for_another_writer_looks_again_every_few_milliseconds(
    primary: Path, writer: SqlWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite's own busy handler sleeps up to 100 ms between looks: writers committing one
    # after another could take the lock in every gap and keep a waiter out for seconds.
    looks = record_busy_looks(monkeypatch)
    writer.checkpoint()
    other = _locked(primary)
    checkpoints: list[int] = []
    thread = threading.Thread(target=lambda: checkpoints.append(writer.checkpoint()))
    thread.start()
    try:
        assert looks.many.wait(timeout=10)
    finally:
        other.execute("COMMIT")
        other.close()
        thread.join(timeout=10)
    assert checkpoints == [0]
    assert max(looks.waits) <= 0.01


def test_a_writer_kept_from_the_lock_for_the_pool_timeout_finds_sql_unavailable(
    primary: Path,
) -> None:
    other = _locked(primary)
    try:
        with _writer(primary, PoolConfig(size=1, overflow=0, timeout_s=0.05)) as writer:
            for _ in range(2):
                with pytest.raises(SqlUnavailableError, match="database is locked"):
                    writer.checkpoint()
            # The pooled connection waits for the lock as long as it did before.
            with writer.engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 50
    finally:
        other.close()
