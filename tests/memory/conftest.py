"""Memory read paths on every backend a query can run on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pjai.hybrid import HybridDatabaseManager
from tests.databases import database

READERS = ["store", "sqlite-sql", "postgresql-sql"]
"""The reactive store; the SQL primary with the store off, on SQLite and on PostgreSQL."""


@contextmanager
def open_reader(name: str, path: Path) -> Iterator[HybridDatabaseManager]:
    """A manager whose queries read the store, or SQLite or PostgreSQL SQL (store off)."""
    environ = {} if name == "store" else {"PJAI_USE_LIVESTORE": "false"}
    backend = "postgresql" if name.startswith("postgresql") else "sqlite"
    with (
        database(backend, path / "sql") as url,
        HybridDatabaseManager.open(path / "data", sql_urls=[url], environ=environ) as manager,
    ):
        assert manager.use_livestore == (name == "store")
        yield manager


@pytest.fixture(params=READERS)
def reader(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HybridDatabaseManager]:
    """A fresh manager per test, reading each of :data:`READERS` in turn."""
    with open_reader(request.param, tmp_path) as manager:
        yield manager
