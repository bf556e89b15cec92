"""Opening a legacy file: what stops the import before it reads a row says what to do."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from pjai.errors import ConfigError
from pjai.hybrid import HybridDatabaseManager
from pjai.hybrid.legacy import import_legacy
from pjai.hybrid.legacy import source as legacy_file
from tests.hybrid.legacy_db import LegacyDatabase


def test_a_file_a_program_is_writing_is_said_to_be_locked(
    manager: HybridDatabaseManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "legacy.db"
    with LegacyDatabase(source) as db:
        db.persona("p1", "One", created_at=0)
    monkeypatch.setattr(legacy_file, "BUSY_SECONDS", 0)
    head = manager.head()
    with closing(sqlite3.connect(source, isolation_level=None)) as app:
        app.execute("BEGIN EXCLUSIVE")  # the desktop app, in the middle of a write
        with pytest.raises(ConfigError, match="is locked by a program writing it"):
            import_legacy(manager, source, report_path=tmp_path / "report.jsonl")
        app.execute("ROLLBACK")
    assert manager.head() == head
    assert import_legacy(manager, source, report_path=tmp_path / "report.jsonl").personas == 1
