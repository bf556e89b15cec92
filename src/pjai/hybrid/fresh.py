"""Holding a data directory alone while an import or a backup goes into it, undoing
what a failed import made in a directory that was new or empty to it, and marking a
directory whose import has not finished."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pjai.errors import ConfigError
from pjai.hybrid.files import FLAGS_FILE, IDENTITY_FILE, IMPORTING_FILE, STORE_FILE
from pjai.hybrid.manager import HybridDatabaseManager
from pjai.sql.engine import PRIMARY_FILE, sqlite_file

__all__ = ["MADE_HERE", "Made", "importing", "opening", "sql_inside", "taken"]


@contextlib.contextmanager
def taken(data_dir: Path, *, doing: str = "an import") -> Iterator[None]:
    """Hold ``data_dir`` alone while ``doing`` (an import, a backup) goes into it: made
    if missing, and locked until the end, so that it is found empty, filled and cleaned
    up by one process only. Another import or backup into it, or a command opening it
    (:func:`opening`), is refused at once; two of them at once would each take the
    directory as new, and the one that fails would remove what the other made. The
    folders made for it are removed again if they are left empty. The lock is the
    directory's own (``flock``), so no file is added; the kernel lets go of it when
    the process ends, however it ends."""
    folders = _missing(data_dir)
    held = _locked(data_dir, fcntl.LOCK_EX)
    if held is None:
        raise ConfigError(
            f"another import or backup into {data_dir} is running (or a command is "
            f"opening it): {doing} goes into a directory of its own; let that one finish, "
            "or choose another directory"
        )
    try:
        yield
    finally:
        try:
            for folder in folders:
                # Something made there since (the import's own data): then it stays.
                with contextlib.suppress(OSError):
                    folder.rmdir()
        finally:
            os.close(held)


@contextlib.contextmanager
def opening(data_dir: Path) -> Iterator[None]:
    """Held while a command opens ``data_dir`` (makes it and its files if missing):
    refused at once while an import or a backup goes into it (:func:`taken`), which
    found it empty and would take what the command makes for its own."""
    held = _locked(data_dir, fcntl.LOCK_SH)
    if held is None:
        raise ConfigError(
            f"an import or backup into {data_dir} is running: let it finish, then open "
            "the directory"
        )
    try:
        yield
    finally:
        os.close(held)


def _locked(data_dir: Path, how: int) -> int | None:
    """A descriptor of ``data_dir`` (made if missing) locked ``how``, or ``None`` if
    another holds a lock that excludes it."""
    while True:
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            held = os.open(data_dir, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            continue  # removed meanwhile by a failed import that had made it
        try:
            fcntl.flock(held, how | fcntl.LOCK_NB)
            # Locked, but perhaps a directory removed since and made anew at that path:
            # then the lock holds nothing back.
            with contextlib.suppress(FileNotFoundError):
                if os.path.samestat(os.fstat(held), os.stat(data_dir)):
                    return held
        except BlockingIOError:
            os.close(held)
            return None
        except OSError as exc:
            os.close(held)
            raise ConfigError(
                f"cannot lock the data directory {data_dir} ({exc.strerror or exc}): PJai "
                "keeps its data on a local file system, which has locks"
            ) from exc
        except BaseException:
            os.close(held)
            raise
        os.close(held)


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
