"""Opening a legacy file: what stops the import before it reads a row says what to do."""

from __future__ import annotations

import os
import shutil
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


def test_a_wal_file_whose_log_cannot_be_read_where_it_lies_says_to_copy_both(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    # A copy of the file and its log, as the desktop app left them, where SQLite cannot
    # make the -shm file it reads the log through (the link stands for a read-only folder).
    app_dir, source = tmp_path / "app", tmp_path / "copy" / "legacy.db"
    app_dir.mkdir()
    source.parent.mkdir()
    db = LegacyDatabase(app_dir / "legacy.db")
    db.execute("PRAGMA journal_mode = WAL")
    db.persona("p1", "One", created_at=0)
    with closing(sqlite3.connect(app_dir / "legacy.db")) as app:
        app.execute("PRAGMA wal_autocheckpoint = 0")
        db.close()
        app.execute("INSERT INTO personas (id, name) VALUES ('p2', 'Two')")
        app.commit()
        shutil.copy(app_dir / "legacy.db", source)
        shutil.copy(app_dir / "legacy.db-wal", f"{source}-wal")
    os.symlink(tmp_path / "nowhere" / "shm", f"{source}-shm")

    with pytest.raises(ConfigError, match=r"copy legacy\.db and legacy\.db-wal together"):
        import_legacy(manager, source, report_path=tmp_path / "report.jsonl")
    Path(f"{source}-shm").unlink()  # where it can be made, the copy is read whole
    assert import_legacy(manager, source, report_path=tmp_path / "report.jsonl").personas == 2
