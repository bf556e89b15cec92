"""Fixtures shared by PJai's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pjai.store import Store


@pytest.fixture
def store() -> Iterator[Store]:
    """A standalone in-memory store."""
    with Store.memory() as s:
        yield s


@pytest.fixture
def store_file(tmp_path: Path) -> Path:
    """Path of a store file that does not exist yet."""
    return tmp_path / "data" / "store.db"
