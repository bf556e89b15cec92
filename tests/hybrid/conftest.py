"""Fixtures for the hybrid manager: one per SQL backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pjai.hybrid import HybridDatabaseManager
from tests.databases import BACKENDS, database


@pytest.fixture(params=BACKENDS)
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh SQL primary URL: SQLite, and PostgreSQL when configured."""
    with database(request.param, tmp_path / "sql") as url:
        yield url


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """An empty data directory."""
    return tmp_path / "data"


@pytest.fixture
def manager(data_dir: Path, sql_url: str) -> Iterator[HybridDatabaseManager]:
    """A manager on a fresh data directory and SQL primary, with the store on."""
    with HybridDatabaseManager.open(data_dir, sql_urls=[sql_url], environ={}) as m:
        yield m
