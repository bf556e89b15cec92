"""Undoing what a failed import made in a data directory that was new or empty to it,
and marking a directory whose import has not finished."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pjai.hybrid.files import IMPORTING_FILE
from pjai.hybrid.manager import HybridDatabaseManager
from pjai.sql.engine import sqlite_file

__all__ = ["Made", "importing", "sql_inside"]


@contextlib.contextmanager
def importing(
    data_dir: Path, source: Path, *, again: str, doing: str = "an import"
) -> Iterator[None]:
    """Mark ``data_dir`` as taking an import of ``source`` (or what ``doing`` names: a
    backup) while it runs. An import that ends, well or with an error, takes the mark
    away (a failed one says what it left); a process stopped on the way (killed, out of
    memory, the power gone) cannot, and the mark then tells that the directory holds
    part of an import, and what to do (``again``)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    mark = data_dir / IMPORTING_FILE
    what = {
        "doing": doing,
        "source": str(source),
        "started_at": datetime.now(UTC).isoformat(),
        "again": again,
    }
    with mark.open("w") as file:
        json.dump(what, file)
        file.flush()
        os.fsync(file.fileno())
    try:
        yield
    finally:
        mark.unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class Made:
    """What an import makes in a data directory, to remove if it fails: everything in
    it but what was there before."""

    data_dir: Path
    existed: frozenset[str]
    """The names in the data directory before the import: they stay."""
    report: Path | None
    """The report, when it is outside the data directory and does not exist yet."""
    folders: tuple[Path, ...]
    """Folders that do not exist yet (the data directory's, the report's), deepest first."""

    @classmethod
    def before(
        cls, data_dir: Path, report: Path | None = None, *, only_if_empty: bool = True
    ) -> Made | None:
        """What exists now; ``None`` if ``data_dir`` is a file, or holds anything and
        ``only_if_empty`` (a directory with data keeps what an import did there)."""
        if data_dir.exists() and not data_dir.is_dir():
            return None
        existed = (
            frozenset(p.name for p in data_dir.iterdir()) if data_dir.exists() else frozenset()
        )
        if existed and only_if_empty:
            return None
        folders = set(_missing(data_dir))
        if report is not None:
            folders |= set(_missing(report.parent))
            if report.absolute().is_relative_to(data_dir.absolute()) or report.exists():
                report = None
        return cls(
            data_dir,
            existed,
            report,
            tuple(sorted(folders, key=lambda folder: len(folder.parts), reverse=True)),
        )

    def remove(self) -> list[str]:
        """Remove what the import made; what could not be removed, and why."""
        problems = []
        here = self.data_dir.iterdir() if self.data_dir.is_dir() else iter(())
        made = [path for path in here if path.name not in self.existed]
        if self.report is not None and self.report.exists():
            made.append(self.report)
        for path in made:
            try:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
            except OSError as exc:
                problems.append(f"could not remove {path}, which the import made: {exc}")
        for folder in self.folders:
            # Gone already, or something else has been put there since: then it stays.
            with contextlib.suppress(OSError):
                folder.rmdir()
        return problems


def _missing(path: Path) -> list[Path]:
    """``path`` and those of its parents that do not exist, deepest first."""
    absent = []
    for folder in (path.absolute(), *path.absolute().parents):
        if folder.exists():
            break
        absent.append(folder)
    return absent


def sql_inside(manager: HybridDatabaseManager) -> bool:
    """Whether every SQL shard is an SQLite file inside the manager's data directory."""
    home = manager.data_dir.absolute()
    for shard in manager.shards:
        file = sqlite_file(shard.engine.url)
        if file is None or not file.absolute().is_relative_to(home):
            return False
    return True
