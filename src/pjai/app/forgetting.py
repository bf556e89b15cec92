"""What the files beside the store and SQL keep of personas PJai no longer holds: their
memory vectors and the legacy import report's values, dropped and the files rewritten,
for one persona as she is erased (:func:`rewrite_beside`), or for every persona and row
gone (:func:`forget_gone`; :class:`ForgetGone` while a directory syncs, as personas
erased on other devices leave)."""

from __future__ import annotations

from sqlalchemy import select

from pjai.app.datadir import DataDir
from pjai.app.eventlog import persona_row_ids
from pjai.hybrid import HybridDatabaseManager
from pjai.hybrid.legacy.report import forget_rows, listed_rows
from pjai.memory.forgetting import forget_persona, forget_personas_but
from pjai.schema.expressions import in_parts
from pjai.schema.records import EventRecord
from pjai.schema.tables import conversations, memories, personas

__all__ = ["ForgetGone", "forget_gone", "rewrite_beside"]


def rewrite_beside(
    data_dir: DataDir, events: list[EventRecord], persona_id: str, *, again: bool
) -> tuple[int, list[str], list[str]]:
    """Drop the persona's vectors and legacy import report values, rewriting their
    files (the vector file also when it holds none of them, with ``again``: an erasure
    stopped after deleting them, before the rewrite); the vectors deleted, what was
    rewritten, and what was not."""
    rewritten, unfinished = [], []
    vectors = forget_persona(data_dir.vectors_path, persona_id, rewrite=again)
    if vectors.rewritten:
        rewritten.append(data_dir.vectors_path.name)
    elif vectors.vectors or (again and data_dir.vectors_path.exists()):
        unfinished.append(
            f"{data_dir.vectors_path.name}: another connection still reads an older state of it"
        )
    report = data_dir.legacy_report_path
    try:
        if forget_rows(report, persona_row_ids(events, persona_id)):
            rewritten.append(report.name)
    except OSError as exc:
        unfinished.append(f"{report.name}: cannot rewrite it without the persona's values: {exc}")
    return vectors.vectors, rewritten, unfinished


def forget_gone(data_dir: DataDir, manager: HybridDatabaseManager) -> list[str]:
    """Drop what the files beside the store and SQL keep of personas and rows that PJai
    no longer holds (erased here, or on another device whose erasure event came by
    sync): their memory vectors and the legacy import report's values. The names of the
    files rewritten."""
    rewritten = []
    live = {row.id for row in manager.query(select(personas.c.id))}
    if forget_personas_but(data_dir.vectors_path, live).rewritten:
        rewritten.append(data_dir.vectors_path.name)
    report = data_dir.legacy_report_path
    listed = listed_rows(report)
    gone = {}
    for table, ids in listed.items():
        column = _LEGACY_TABLES[table].c.id
        held = set()
        for chunk in in_parts(sorted(ids)):
            held |= {row.id for row in manager.query(select(column).where(column.in_(chunk)))}
        gone[table] = ids - held
    if any(gone.values()) and forget_rows(report, gone):
        rewritten.append(report.name)
    return rewritten


class ForgetGone:
    """Run while a directory syncs: when personas leave (erased on another device), what
    the files beside the store keep of them goes too (:func:`forget_gone`)."""

    def __init__(self, data_dir: DataDir, manager: HybridDatabaseManager) -> None:
        self._data_dir, self._manager = data_dir, manager
        self._known: set[str] | None = None

    def __call__(self) -> None:
        live = {row.id for row in self._manager.query(select(personas.c.id))}
        if self._known is None or self._known - live:
            forget_gone(self._data_dir, self._manager)
        self._known = live


_LEGACY_TABLES = {t.name: t for t in (personas, memories, conversations)}
"""The tables whose rows a legacy import report names."""
