"""Undoing what a failed import made in a data directory that was new or empty to it,
and marking a directory whose import has not finished."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pjai.hybrid.files import FLAGS_FILE, IDENTITY_FILE, IMPORTING_FILE, STORE_FILE
from pjai.hybrid.manager import HybridDatabaseManager
from pjai.sql.engine import PRIMARY_FILE, sqlite_file

__all__ = ["MADE_HERE", "Made", "importing", "sql_inside"]


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


MADE_HERE = (STORE_FILE, PRIMARY_FILE, FLAGS_FILE, IDENTITY_FILE, IMPORTING_FILE)
"""The files an import makes in a data directory: with the files beside them (their
journals, a flags file's draft), the names of what it makes begin so."""


@dataclass(frozen=True, slots=True)
class Made:
    """What an import makes in a data directory, to remove if it fails: everything in
    a directory that was new or empty to it; in one that held something (other
    programs' files, that they may add to meanwhile), only PJai's files."""

    data_dir: Path
    existed: frozenset[str]
    """The names in the data directory before the import: they stay."""
    report: Path | None
    """The report, when it is outside the data directory and does not exist yet."""
    folders: tuple[Path, ...]
    """Folders that do not exist yet (the data directory's, the report's), deepest first."""
    ours: tuple[str, ...] = MADE_HERE
    """How the names of the files the import makes begin (:data:`MADE_HERE`, and the
    names of SQLite shards kept in the directory)."""

    @classmethod
    def before(
        cls,
        data_dir: Path,
        report: Path | None = None,
        *,
        only_if_empty: bool = True,
        shards: Iterable[str] = (),
    ) -> Made | None:
        """What exists now; ``None`` if ``data_dir`` is a file, or holds anything and
        ``only_if_empty`` (a directory with data keeps what an import did there).
        ``shards``: the SQL primary's URLs, whose SQLite files in ``data_dir`` are the
        import's too."""
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
        home = data_dir.absolute()
        files = (sqlite_file(url) for url in shards)
        inside = tuple(f.name for f in files if f is not None and f.absolute().parent == home)
        if report is not None and report.absolute().parent == home:
            inside += (report.name,)
        return cls(
            data_dir,
            existed,
            report,
            tuple(sorted(folders, key=lambda folder: len(folder.parts), reverse=True)),
            (*MADE_HERE, *inside),
        )

    def remove(self) -> list[str]:
        """Remove what the import made; what could not be removed, and why."""
        problems = []
        here = self.data_dir.iterdir() if self.data_dir.is_dir() else iter(())
        made = [path for path in here if path.name not in self.existed and self._ours(path.name)]
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

    def _ours(self, name: str) -> bool:
        """Whether the import made ``name``: anything, in a directory it found empty."""
        return not self.existed or name.startswith(self.ours)


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
