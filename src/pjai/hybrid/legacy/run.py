"""Running a legacy import: read the file, settle each row's events, commit in batches."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import msgspec

from pjai.errors import ConfigError, EventError
from pjai.hybrid.legacy import source as legacy_file
from pjai.hybrid.legacy.drafts import Built
from pjai.hybrid.legacy.report import (
    LegacyImport,
    Rejection,
    UnmappedValue,
    check_report_path,
    shown,
    write_report,
)
from pjai.hybrid.legacy.rows import (
    COLUMNS,
    TARGETS,
    Mapping,
    Row,
    active_since,
    conversation_drafts,
    created_at,
    memory_drafts,
    persona_drafts,
)
from pjai.hybrid.legacy.values import Problem, RowError, row_id_of
from pjai.hybrid.manager import HybridDatabaseManager
from pjai.schema import Event, EventRecord, PersonaActivated, PersonaErased, utc_now
from pjai.schema.types import as_datetime
from pjai.store import Progress

__all__ = ["BATCH_BYTES", "BATCH_EVENTS", "import_legacy"]

BATCH_EVENTS = 500
"""At most this many events go into one commit (a conversation's events stay together)."""

BATCH_BYTES = 16 * 1024 * 1024
"""A commit is made once the rows pending hold this much text: rows of large values,
500 to a batch, would hold a gigabyte (an event may carry 2 MiB)."""


def import_legacy(
    manager: HybridDatabaseManager,
    source: Path,
    *,
    report_path: Path,
    progress: Progress | None = None,
    tag: Callable[..., list[str]] | None = None,
) -> LegacyImport:
    """Import the legacy database at ``source`` into ``manager`` and write the report.

    ``tag(tags, *texts)`` gives a memory's tags from its text (see :class:`Mapping`).

    Raises :class:`~pjai.errors.ConfigError` when ``source`` is missing, is not a
    PJai desktop database or has a damaged page in the tables imported (before anything
    is imported). The report is written even when nothing is rejected, and, marked
    incomplete, when an error stops the import; running it again resumes.
    """
    source = Path(source)
    if report_path.resolve() == source.resolve():
        raise ConfigError(f"the report {report_path} would overwrite the legacy database")
    check_report_path(report_path)
    try:
        report_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the folder of the report {report_path}: {exc}") from exc
    with closing(legacy_file.open_legacy(source)) as conn:
        layout = legacy_file.check(conn, source)
        try:
            scales = legacy_file.scales(conn, layout)
        except sqlite3.Error as exc:
            raise ConfigError(f"reading {source}: {exc}") from exc
        mapping = Mapping(scales["importance"], scales["threshold"], utc_now())
        if tag is not None:
            mapping = replace(mapping, tag=tag)
        run = _Run(manager, progress, layout.total, mapping)
        not_imported = layout.not_imported()
        try:
            run.personas(list(legacy_file.rows(conn, "personas", layout)))
            run.rows("memory_entities", legacy_file.rows(conn, "memory_entities", layout))
            run.rows("conversations", legacy_file.rows(conn, "conversations", layout))
        except BaseException as exc:
            error = f"reading {source}: {exc}" if isinstance(exc, sqlite3.Error) else str(exc)
            write_report(
                run.result(report_path),
                source,
                not_imported,
                error=error or type(exc).__name__,
                tables=layout.others,
            )
            if isinstance(exc, sqlite3.Error):
                raise ConfigError(error) from exc
            raise
    result = run.result(report_path)
    write_report(result, source, not_imported, tables=layout.others)
    return result


def _erased(manager: HybridDatabaseManager) -> set[str]:
    """The personas erased in this directory, from its event log (the store's, else the
    SQL journal's; only its erasure events are read): an erasure leaves no row to find
    them by."""
    store = manager.store
    named = (PersonaErased.NAME,)
    log: Iterable[EventRecord]
    if store is not None:
        log = (entry.record for entry in store.events(named=named))
    else:
        log = manager.shards.journal(named=named)
    erased = set()
    for record in manager.schema.proven(log):
        args = msgspec.json.decode(bytes(record.args))  # persona_id is never sealed
        erased.add(str(args["persona_id"]))
    return erased


def _shown(problems: list[Problem]) -> list[Problem]:
    """``problems`` with their values as the report keeps them (:func:`.report.shown`):
    they are held until the report is written."""
    return [Problem(p.column, shown(p.value), p.reason) for p in problems]


@dataclass(frozen=True, slots=True)
class _Unit:
    """One legacy row's events, committed together or not at all."""

    table: str
    row_id: str
    events: list[Event]
    problems: list[Problem]


class _Run:
    """One import: the rows PJai already has, the batch pending, counts and reports.

    A row whose id PJai has is skipped only when PJai's row was imported from it: a
    persona created at the same time (by id alone when another time stands in for the
    legacy row's ``created_at``, which may change: its ``updated_at``, the import time), a
    memory or conversation of the same persona. Any other holder of the id is a clash,
    and the row is rejected rather than merged into what PJai holds.
    """

    def __init__(
        self,
        manager: HybridDatabaseManager,
        progress: Progress | None,
        total: int,
        mapping: Mapping,
    ) -> None:
        self.manager = manager
        self.progress = progress
        self.total = total
        self.mapping = mapping
        self.done = 0
        self.created = {
            str(row[0]): as_datetime(row[1])
            for row in manager.query("SELECT id, created_at FROM personas")
        }
        """When each persona PJai has was created, by id."""
        self.owners = {
            table: {
                str(row[0]): str(row[1])
                for row in manager.query(f"SELECT id, persona_id FROM {TARGETS[table]}")
            }
            for table in ("memory_entities", "conversations")
        }
        """The persona of each memory and conversation PJai has, by id."""
        self.erased = _erased(manager)
        """Personas erased here: a legacy file still holding one does not bring it back."""
        self.clashes: set[str] = set()
        """Legacy personas whose id PJai gave another persona."""
        self.seen: dict[str, set[str]] = {table: set() for table in COLUMNS}
        self.imported: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.messages = 0
        self.rejections: list[Rejection] = []
        self.unmapped: list[UnmappedValue] = []
        self.pending: list[_Unit] = []
        self.pending_events = 0
        self.pending_bytes = 0
        self.new_personas: set[str] = set()
        self.activate: str | None = None
        """The persona to activate as it is imported."""

    def personas(self, rows: list[Row]) -> None:
        """Import the personas; the one the legacy app had active is activated with its
        import, in the same commit (an import resumed later finds it active or absent).

        Of several marked active, the one changed last is; PJai has one active persona.
        """
        active: list[tuple[datetime, int, str]] = []
        for index, row in enumerate(rows):
            try:
                row_id = row_id_of(row["id"])
            except RowError:
                continue  # rejected as it is offered
            if row_id is not None and (since := active_since(row)) is not None:
                active.append((since, index, row_id))
        if active and (chosen := max(active)[2]) not in self.created:
            self.activate = chosen
        self.rows("personas", iter(rows))

    def rows(self, table: str, rows: Iterator[Row]) -> None:
        """Offer every row of ``table``, then commit what is still pending."""
        for row in rows:
            self.offer(table, row)
        self.flush()

    def offer(self, table: str, row: Row) -> None:
        """Skip, reject or queue one legacy row; commit when a batch is full."""
        self.done += 1
        row_id = None
        try:
            row_id = row_id_of(row["id"])
            if row_id is None:
                raise RowError("id is missing")
            if row_id in self.seen[table]:
                raise RowError(f"id {row_id!r} appears more than once in {table}")
            self.seen[table].add(row_id)
            if self.held(table, row, row_id):
                self.skip(table, row, row_id)
                return
            built = self.build(table, row, row_id)
            events = built.settle(self.manager.schema)
            if table == "personas" and row_id == self.activate:
                events.append(PersonaActivated(persona_id=row_id))
        except RowError as exc:
            self.reject(table, row_id, str(exc))
            return
        self.pending.append(_Unit(table, row_id, events, _shown(built.problems)))
        self.pending_events += len(events)
        self.pending_bytes += sum(len(v) for v in row.values() if isinstance(v, str | bytes))
        if self.pending_events >= BATCH_EVENTS or self.pending_bytes >= BATCH_BYTES:
            self.flush()

    def held(self, table: str, row: Row, row_id: str) -> bool:
        """Whether PJai holds this row, imported from it earlier; :class:`RowError` when
        another row holds its id."""
        if table == "personas":
            if row_id in self.erased:
                raise RowError(f"persona {row_id!r} was erased here; it is not imported again")
            if row_id not in self.created:
                return False
            held, legacy = self.created[row_id], created_at(row)
            if legacy is None or legacy == held:
                return True
            self.clashes.add(row_id)
            raise RowError(
                f"id {row_id!r} is taken by another persona (created {held.isoformat()},"
                f" this one {legacy.isoformat()}); nothing was imported over it"
            )
        owner = self.owners[table].get(row_id)
        if owner is None:
            return False
        persona_id = self.persona_of(row)
        if owner != persona_id:
            kind = "memory" if table == "memory_entities" else "conversation"
            raise RowError(
                f"id {row_id!r} is taken by a {kind} of another persona ({owner});"
                " nothing was imported over it"
            )
        return True

    def persona_of(self, row: Row) -> str:
        """The persona of a memory or conversation; :class:`RowError` when it has none
        or it was not imported."""
        persona_id = row_id_of(row["persona_id"], "persona_id")
        if persona_id is None:
            raise RowError("persona_id is missing")
        if persona_id in self.erased:
            raise RowError(f"persona {persona_id!r} was erased here; it is not imported again")
        if persona_id in self.clashes or (
            persona_id not in self.created and persona_id not in self.new_personas
        ):
            raise RowError(f"persona {persona_id!r} was not imported")
        return persona_id

    def skip(self, table: str, row: Row, row_id: str) -> None:
        """Count a row PJai already has, and list the values it did not take from it."""
        self.skipped[table] += 1
        try:
            built = self.build(table, row, row_id)
            built.settle(self.manager.schema)
        except RowError:
            return  # PJai holds the row; what it has is no longer this file's to report
        self.note(table, row_id, _shown(built.problems))

    def build(self, table: str, row: Row, row_id: str) -> Built:
        """The drafts of one row; raises :class:`RowError` when it has none."""
        if table == "personas":
            return persona_drafts(row, row_id, self.mapping)
        persona_id = self.persona_of(row)
        if table == "memory_entities":
            return memory_drafts(row, row_id, persona_id, self.mapping)
        return conversation_drafts(row, row_id, persona_id)

    def flush(self) -> None:
        """Commit the pending rows; a refused batch is split until the rows at fault are
        found, so the others still go in large commits."""
        units, self.pending, self.pending_events, self.pending_bytes = self.pending, [], 0, 0
        for unit in self.commit(units):
            self.imported[unit.table] += 1
            self.note(unit.table, unit.row_id, unit.problems)
            if unit.table == "personas":
                self.new_personas.add(unit.row_id)
            elif unit.table == "conversations":
                self.messages += len(unit.events) - 1
        if self.progress is not None:
            self.progress(self.done, self.total)

    def commit(self, units: list[_Unit]) -> list[_Unit]:
        """Commit ``units`` together, or each half apart if refused; those committed."""
        if not units:
            return []
        try:
            self.manager.commit(*[event for unit in units for event in unit.events])
        except EventError as exc:
            if len(units) == 1:
                self.reject(units[0].table, units[0].row_id, str(exc))
                return []
            half = len(units) // 2
            return self.commit(units[:half]) + self.commit(units[half:])
        return units

    def note(self, table: str, row_id: str, problems: list[Problem]) -> None:
        """Record the values of an imported row that were not imported."""
        self.unmapped += [
            UnmappedValue(table, row_id, p.column, p.value, p.reason) for p in problems
        ]

    def reject(self, table: str, row_id: str | None, reason: str) -> None:
        """Record that a row was not imported and why."""
        self.rejections.append(Rejection(table, row_id, reason))

    def result(self, report: Path) -> LegacyImport:
        """The outcome so far."""
        return LegacyImport(
            personas=self.imported["personas"],
            memories=self.imported["memory_entities"],
            conversations=self.imported["conversations"],
            messages=self.messages,
            skipped_personas=self.skipped["personas"],
            skipped_memories=self.skipped["memory_entities"],
            skipped_conversations=self.skipped["conversations"],
            rejections=tuple(self.rejections),
            report=report,
            unmapped=tuple(self.unmapped),
            scales={
                f"{table}.{column}": getattr(self.mapping, name).name
                for name, (table, column) in legacy_file.SCALED.items()
            },
        )
