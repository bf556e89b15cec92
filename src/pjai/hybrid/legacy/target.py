"""Importing into a data directory, which a failed import leaves as it found it."""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pjai.hybrid.legacy.report import LegacyImport
from pjai.hybrid.legacy.run import import_legacy
from pjai.hybrid.manager import HybridDatabaseManager
from pjai.store import Progress

__all__ = ["import_into"]


def import_into(
    data_dir: Path,
    source: Path,
    *,
    report_path: Path,
    progress: Progress | None = None,
    **options: Any,
) -> LegacyImport:
    """Open ``data_dir`` (``options`` as for :meth:`HybridDatabaseManager.open`) and import.

    ``progress`` reports the store catching up as the directory opens, then the import.
    When the import fails and ``data_dir`` did not exist or was empty, it is left so
    again: its new files, the folders made for it and a new report elsewhere are removed.
    Not so when events of the import reached an SQL primary outside the directory: the
    store stays with them, as does the work done in a directory that held anything, and
    a second run resumes.
    """
    made = _Made.before(Path(data_dir), Path(report_path))
    try:
        with HybridDatabaseManager.open(data_dir, progress=progress, **options) as manager:
            head = manager.head()
            try:
                return import_legacy(manager, source, report_path=report_path, progress=progress)
            except BaseException:
                if manager.head() != head and not _sql_inside(manager):
                    made = None
                raise
    except BaseException as exc:
        if made is not None:
            for problem in made.remove():
                exc.add_note(problem)
        raise


@dataclass(frozen=True, slots=True)
class _Made:
    """What an import into a new or empty data directory makes, to remove if it fails."""

    data_dir: Path
    report: Path | None
    """The report, when it is outside the data directory and does not exist yet."""
    folders: tuple[Path, ...]
    """Folders that do not exist yet (the data directory's, the report's), deepest first."""

    @classmethod
    def before(cls, data_dir: Path, report: Path) -> _Made | None:
        """What exists now; ``None`` if ``data_dir`` holds anything (it is then kept)."""
        if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
            return None
        outside = not report.absolute().is_relative_to(data_dir.absolute())
        folders = {*_missing(data_dir), *_missing(report.parent)}
        return cls(
            data_dir,
            report if outside and not report.exists() else None,
            tuple(sorted(folders, key=lambda folder: len(folder.parts), reverse=True)),
        )

    def remove(self) -> list[str]:
        """Remove what the import made; what could not be removed, and why."""
        problems = []
        made = list(self.data_dir.iterdir()) if self.data_dir.is_dir() else []
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
    missing = []
    for folder in (path.absolute(), *path.absolute().parents):
        if folder.exists():
            break
        missing.append(folder)
    return missing


def _sql_inside(manager: HybridDatabaseManager) -> bool:
    """Whether every SQL shard is an SQLite file inside the manager's data directory."""
    home = manager.data_dir.absolute()
    for shard in manager.shards:
        url = shard.engine.url
        if url.get_backend_name() != "sqlite" or not url.database:
            return False
        if not Path(url.database).absolute().is_relative_to(home):
            return False
    return True
