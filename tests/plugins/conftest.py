"""The data directory, manager and persona a plugin test runs with."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pjai.app import DataDir, Memories, Personas
from pjai.app.plugins import plugin_registry
from pjai.hybrid import HybridDatabaseManager
from pjai.plugins import Registry


@pytest.fixture
def setting(tmp_path: Path) -> Iterator[tuple[Registry, HybridDatabaseManager, str]]:
    data = DataDir(tmp_path / "data")
    manager = data.open()
    ada = Personas(manager).create("Ada")
    Memories(manager).add(ada.id, "likes green tea")
    yield plugin_registry(data.path), manager, ada.id
    manager.close()
