"""Fixtures for the application layer: a data directory per SQL backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pjai.app import DataDir
from pjai.hybrid import HybridDatabaseManager
from tests.databases import BACKENDS, database


@pytest.fixture(params=BACKENDS)
def data(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DataDir]:
    """A new data directory whose SQL primary is SQLite, and PostgreSQL when configured.

    Its environment is its own: flags come from its flags file alone.
    """
    with database(request.param, tmp_path / "sql") as url:
        yield DataDir(tmp_path / "data", environ={"PJAI_SQL_SHARDS": url})


@pytest.fixture
def manager(data: DataDir) -> Iterator[HybridDatabaseManager]:
    """The data directory's manager, with the store on."""
    with data.open() as m:
        yield m
