"""Importing into a data directory, which a failed import leaves as it found it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pjai.hybrid.fresh import Made, importing, sql_inside, taken
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
    tag: Callable[..., list[str]] | None = None,
    **options: Any,
) -> LegacyImport:
    """Open ``data_dir`` (``options`` as for :meth:`HybridDatabaseManager.open`) and import.

    ``progress`` reports the store catching up as the directory opens, then the import.
    Another import or backup into ``data_dir``, or a command opening it, is refused at
    once while it runs (:func:`~pjai.hybrid.fresh.taken`).
    When the import fails and ``data_dir`` did not exist or was empty, it is left so
    again: its new files, the folders made for it and a new report elsewhere are removed.
    Not so when events of the import reached an SQL primary outside the directory: the
    store stays with them, as does the work done in a directory that held anything, and
    a second run resumes.
    """
    # Held from before it is found empty until what a failure left is taken back.
    with taken(Path(data_dir)):
        made = Made.before(Path(data_dir), Path(report_path))
        try:
            with (
                importing(Path(data_dir), source, again="run the import again (it resumes)"),
                HybridDatabaseManager.open(data_dir, progress=progress, **options) as manager,
            ):
                head = manager.head()
                try:
                    return import_legacy(
                        manager, source, report_path=report_path, progress=progress, tag=tag
                    )
                except BaseException:
                    if manager.head() != head and not sql_inside(manager):
                        made = None
                    raise
        except BaseException as exc:
            if made is not None:
                for problem in made.remove():
                    exc.add_note(problem)
            raise
