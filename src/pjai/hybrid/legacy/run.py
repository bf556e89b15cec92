"""Running a legacy import: open the file read-only, batch the events, write the report."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pjai.errors import ConfigError, EventError
from pjai.hybrid.legacy.rows import (
    COLUMNS,
    NOT_IMPORTED,
    REQUIRED,
    TARGETS,
    Row,
    RowError,
    conversation_events,
    flag,
    memory_event,
    persona_event,
    row_id_of,
    times,
)
from pjai.hybrid.manager import HybridDatabaseManager
from pjai.schema import ConversationMessageAdded, Event, PersonaActivated, utc_now
from pjai.store import Progress

__all__ = ["BATCH_EVENTS", "LegacyImport", "Rejection", "import_legacy"]

BATCH_EVENTS = 500
"""At most this many events go into one commit (a conversation's events stay together)."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """A legacy row that was not imported: its table, its id and why."""

    table: str
    row_id: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class LegacyImport:
    """What one run of :func:`import_legacy` imported, skipped and rejected."""

    personas: int
    memories: int
    conversations: int
    messages: int
    skipped_personas: int
    skipped_memories: int
    skipped_conversations: int
    rejections: tuple[Rejection, ...]
    report: Path

    @property
    def rejected(self) -> int:
        """How many legacy rows were not imported."""
        return len(self.rejections)

    def summary(self) -> dict[str, object]:
        """This run's counts as ``pjai import-legacy --json`` prints them."""
        return {
            "personas": self.personas,
            "memories": self.memories,
            "conversations": self.conversations,
            "rejected": self.rejected,
            "report": str(self.report),
        }


def import_legacy(
    manager: HybridDatabaseManager,
    source: Path,
    *,
    report_path: Path,
    progress: Progress | None = None,
) -> LegacyImport:
    """Import the legacy database at ``source`` into ``manager`` and write the report.

    Raises :class:`~pjai.errors.ConfigError` when ``source`` is missing or is not a
    PJai desktop database. The report is written even when nothing is rejected, and,
    marked incomplete, when an error stops the import; running it again resumes.
    """
    source = Path(source)
    if report_path.resolve() == source.resolve():
        raise ConfigError(f"the report {report_path} would overwrite the legacy database")
    try:
        report_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the folder of the report {report_path}: {exc}") from exc
    with closing(_open(source)) as conn:
        columns, total = _check(conn, source)
        run = _Run(manager, progress, total)
        not_imported = _not_imported(columns)
        try:
            run.personas(list(_rows(conn, "personas", columns)))
            run.rows("memory_entities", _rows(conn, "memory_entities", columns))
            run.rows("conversations", _rows(conn, "conversations", columns))
        except BaseException as exc:
            error = f"reading {source}: {exc}" if isinstance(exc, sqlite3.Error) else str(exc)
            run.result(report_path, source, not_imported, error=error or type(exc).__name__)
            if isinstance(exc, sqlite3.Error):
                raise ConfigError(error) from exc
            raise
    return run.result(report_path, source, not_imported)


class _Run:
    """One import: the ids PJai already has, the batch pending, counts and rejections."""

    def __init__(
        self, manager: HybridDatabaseManager, progress: Progress | None, total: int
    ) -> None:
        self.manager = manager
        self.progress = progress
        self.total = total
        self.done = 0
        self.existing = {
            table: {str(row[0]) for row in manager.query(f"SELECT id FROM {target}")}
            for table, target in TARGETS.items()
        }
        self.seen: dict[str, set[str]] = {table: set() for table in COLUMNS}
        self.imported: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.messages = 0
        self.rejections: list[Rejection] = []
        self.pending: list[tuple[str, str, list[Event]]] = []
        self.pending_events = 0
        self.new_personas: set[str] = set()

    def personas(self, rows: list[Row]) -> None:
        """Import the personas, then activate the one the legacy app had active."""
        self.rows("personas", iter(rows))
        active: list[tuple[datetime, int, str]] = []
        for index, row in enumerate(rows):
            row_id = row_id_of(row["id"])
            if row_id not in self.existing["personas"] and row_id not in self.new_personas:
                continue
            try:
                if flag(row["is_active"], "is_active", default=False):
                    active.append((times(row)[1], index, row_id))
            except RowError:
                continue  # the row was rejected for this already
        if active and (chosen := max(active)[2]) in self.new_personas:
            try:
                self.manager.commit(PersonaActivated(persona_id=chosen))
            except EventError as exc:
                self.reject("personas", chosen, f"imported but not activated: {exc}")

    def rows(self, table: str, rows: Iterator[Row]) -> None:
        """Offer every row of ``table``, then commit what is still pending."""
        for row in rows:
            self.offer(table, row)
        self.flush()

    def offer(self, table: str, row: Row) -> None:
        """Skip, reject or queue one legacy row; commit when a batch is full."""
        self.done += 1
        row_id = row_id_of(row["id"])
        if row_id in self.existing[table]:
            self.skipped[table] += 1
            return
        try:
            if row_id is None:
                raise RowError("id is missing")
            if row_id in self.seen[table]:
                raise RowError(f"id {row_id!r} appears more than once in {table}")
            self.seen[table].add(row_id)
            events = self.build(table, row, row_id)
            for event in events:
                try:
                    self.manager.schema.encode(event)
                except EventError as exc:
                    where = ""
                    if isinstance(event, ConversationMessageAdded):
                        where = f"message {event.message_id}: "
                    raise RowError(f"{where}{exc}") from exc
        except RowError as exc:
            self.reject(table, row_id, str(exc))
            return
        self.pending.append((table, row_id, events))
        self.pending_events += len(events)
        if self.pending_events >= BATCH_EVENTS:
            self.flush()

    def build(self, table: str, row: Row, row_id: str) -> list[Event]:
        """The events of one row; raises :class:`RowError` when it has none."""
        if table == "personas":
            return [persona_event(row, row_id)]
        persona_id = row_id_of(row["persona_id"])
        if persona_id is None:
            raise RowError("persona_id is missing")
        if persona_id not in self.existing["personas"] and persona_id not in self.new_personas:
            raise RowError(f"persona {persona_id!r} was not imported")
        if table == "memory_entities":
            return [memory_event(row, row_id, persona_id)]
        return conversation_events(row, row_id, persona_id)

    def flush(self) -> None:
        """Commit the pending rows together; if that fails, each alone."""
        units, self.pending, self.pending_events = self.pending, [], 0
        committed = units
        try:
            if units:
                self.manager.commit(*[event for _, _, events in units for event in events])
        except EventError as exc:
            if len(units) == 1:
                self.reject(units[0][0], units[0][1], str(exc))
                committed = []
            else:  # find the rows at fault; the others still go in
                committed = [unit for unit in units if self.commit_alone(*unit)]
        for table, row_id, events in committed:
            self.imported[table] += 1
            if table == "personas":
                self.new_personas.add(row_id)
            elif table == "conversations":
                self.messages += len(events) - 1
        if self.progress is not None:
            self.progress(self.done, self.total)

    def commit_alone(self, table: str, row_id: str, events: list[Event]) -> bool:
        """Commit one row's events; reject the row if they fail."""
        try:
            self.manager.commit(*events)
        except EventError as exc:
            self.reject(table, row_id, str(exc))
            return False
        return True

    def reject(self, table: str, row_id: str | None, reason: str) -> None:
        """Record that a row was not imported and why."""
        self.rejections.append(Rejection(table, row_id, reason))

    def result(
        self, report: Path, source: Path, not_imported: dict[str, str], *, error: str | None = None
    ) -> LegacyImport:
        """The outcome so far, written to ``report`` (atomically)."""
        result = LegacyImport(
            personas=self.imported["personas"],
            memories=self.imported["memory_entities"],
            conversations=self.imported["conversations"],
            messages=self.messages,
            skipped_personas=self.skipped["personas"],
            skipped_memories=self.skipped["memory_entities"],
            skipped_conversations=self.skipped["conversations"],
            rejections=tuple(self.rejections),
            report=report,
        )
        header = {
            "report": "pjai import-legacy: the legacy rows that were not imported, and why",
            "rows": "each further line is one rejected row: table, id, reason",
            "source": str(source.resolve()),
            "finished_at": utc_now().isoformat(),
            "complete": error is None,
            "error": error,
            "imported": {
                "personas": result.personas,
                "memories": result.memories,
                "conversations": result.conversations,
                "messages": result.messages,
            },
            "skipped_as_already_present": {
                "personas": result.skipped_personas,
                "memories": result.skipped_memories,
                "conversations": result.skipped_conversations,
            },
            "rejected": result.rejected,
            "columns_not_imported": not_imported,
        }
        lines = [json.dumps(header)]
        lines += [
            json.dumps({"table": r.table, "id": r.row_id, "reason": r.reason})
            for r in self.rejections
        ]
        temporary = report.with_name(report.name + ".tmp")
        try:
            temporary.write_text("\n".join(lines) + "\n", encoding="utf-8")
            temporary.replace(report)
        except OSError as exc:
            raise ConfigError(f"cannot write the import report {report}: {exc}") from exc
        return result


def _open(source: Path) -> sqlite3.Connection:
    if not source.is_file():
        problem = "is not a file" if source.exists() else "does not exist"
        raise ConfigError(f"legacy database {source} {problem}")
    try:
        return sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot open legacy database {source}: {exc}") from exc


def _check(conn: sqlite3.Connection, source: Path) -> tuple[dict[str, set[str]], int]:
    """Each legacy table's columns and the number of rows; ConfigError if not legacy."""
    try:
        present = {t: {r[1] for r in conn.execute(f"PRAGMA table_info({t})")} for t in COLUMNS}
        if missing := [table for table, columns in present.items() if not columns]:
            raise ConfigError(
                f"{source} is not a PJai desktop database: no table {', '.join(missing)}"
            )
        for table, required in REQUIRED.items():
            if lacking := sorted(required - present[table]):
                raise ConfigError(
                    f"{source} is not a PJai desktop database: table {table} lacks "
                    f"column(s) {', '.join(lacking)}"
                )
        total = sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in COLUMNS)
    except sqlite3.Error as exc:
        raise ConfigError(f"{source} is not a readable SQLite database: {exc}") from exc
    return present, int(total)


def _not_imported(present: dict[str, set[str]]) -> dict[str, str]:
    """The columns of this legacy file that are not imported, and why."""
    columns = {f"{t}.{c}": c not in COLUMNS[t] for t in present for c in present[t]}
    left = {column for column, unread in columns.items() if unread or column in NOT_IMPORTED}
    return {column: NOT_IMPORTED.get(column, "unknown to this importer") for column in sorted(left)}


def _rows(conn: sqlite3.Connection, table: str, present: dict[str, set[str]]) -> Iterator[Row]:
    """The rows of ``table``, known columns only: never the bulky embeddings."""
    wanted = [c for c in COLUMNS[table] if c in present[table]]
    for values in conn.execute(f"SELECT {', '.join(wanted)} FROM {table}"):
        row: Row = dict.fromkeys(COLUMNS[table])
        row.update(zip(wanted, values, strict=True))
        yield row
