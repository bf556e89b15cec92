"""Quarantined events: confirmed events that one side could not apply, and their review.

The store keeps such an event in its log with the reason (:meth:`Store.quarantined
<pjai.store.Store.quarantined>`); SQL journals it with the status ``quarantined``. Both
records stay, for the audit trail. Health reports them until an operator acknowledges
them (``pjai repair --ack-quarantine``): the acknowledgement is a position, kept on the
first SQL shard, through which every quarantined event was reviewed; a later one raises
the alarm again. Rebuilding SQL (``pjai repair --side sql``) starts the review over.
With the store off, the store file's quarantined events are read from the file, which
another process may still write, without opening it as the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pjai.schema.records import EventRecord, LogEntry
from pjai.schema.types import utc_now
from pjai.sql import journal
from pjai.sql.shards import ShardSet
from pjai.store import Store
from pjai.store.filequarantine import read_quarantine

if TYPE_CHECKING:
    from pjai.hybrid.manager import HybridDatabaseManager

__all__ = ["QuarantineReport", "Quarantined", "acknowledge", "report", "unreviewed"]

LISTED = 20
"""How many unacknowledged events a report lists (all are counted)."""


@dataclass(frozen=True, slots=True)
class Quarantined:
    """One quarantined event: where it was refused, and why."""

    event_id: str
    name: str
    position: int
    sides: tuple[str, ...]
    """``store``, ``sql`` or both."""
    reason: str


@dataclass(slots=True)
class QuarantineReport:
    """Quarantined events not yet acknowledged, per side, and the review position."""

    store: int = 0
    sql: int = 0
    reviewed_through: int = 0
    events: list[Quarantined] = field(default_factory=list)
    """The first :data:`LISTED` unacknowledged ones, oldest first."""

    @property
    def alarm(self) -> bool:
        """Whether any quarantined event waits for review."""
        return bool(self.store or self.sql)


def report(manager: HybridDatabaseManager) -> QuarantineReport:
    """The quarantined events after the review position, on the store (its file, with
    the store off) and on SQL."""
    return unreviewed(manager.store, manager.shards, manager.store_path)


def unreviewed(
    store: Store | None, shards: ShardSet, store_file: Path | None = None
) -> QuarantineReport:
    """The quarantined events after the review position, on ``store`` (or, with it
    closed, in ``store_file`` if there is one) and on ``shards``."""
    first = shards.shards[0]
    with first.writer.connection("reading the quarantine review") as conn:
        reviewed = journal.reviewed(conn)
    result = QuarantineReport(reviewed_through=reviewed)
    found: dict[str, tuple[EventRecord, list[str], str]] = {}
    result.store, on_store = _on_store(store, store_file, after=reviewed, limit=LISTED)
    for entry in on_store:
        found[entry.record.id] = (entry.record, ["store"], entry.error or "")
    quarantined: set[str] = set()  # an event journaled on several shards counts once
    for shard in shards:
        with shard.writer.connection("reading quarantined events") as conn:
            quarantined |= journal.ids(conn, journal.QUARANTINED, after=reviewed)
            entries = journal.journal_entries(
                conn, after=reviewed, status=journal.QUARANTINED, batch=LISTED
            )
            for _, (record, _status, error) in zip(range(LISTED), entries, strict=False):
                if record.id in found:
                    found[record.id][1].append("sql")
                else:
                    found[record.id] = (record, ["sql"], error or "")
    result.sql = len(quarantined)
    ordered = sorted(found.values(), key=lambda item: item[0].position.global_seq)
    result.events = [
        Quarantined(r.id, r.name, r.position.global_seq, tuple(sides), reason)
        for r, sides, reason in ordered[:LISTED]
    ]
    return result


def acknowledge(manager: HybridDatabaseManager) -> QuarantineReport:
    """Mark every quarantined event so far as reviewed; returns what was acknowledged,
    with ``reviewed_through`` the new review position.

    The records stay in the store's log and SQL's journal.
    """
    acknowledged = report(manager)
    last = acknowledged.reviewed_through
    _, entries = _on_store(manager.store, manager.store_path, after=last)
    if entries:
        last = entries[-1].record.position.global_seq
    for shard in manager.shards:
        with shard.writer.connection("reading quarantined events") as conn:
            for record, _status, _error in journal.journal_entries(
                conn, after=last, status=journal.QUARANTINED
            ):
                last = max(last, record.position.global_seq)
    first = manager.shards.shards[0]
    with (
        first.writer.connection("acknowledging quarantined events", write=True) as conn,
        conn.begin(),
    ):
        journal.review(conn, last, utc_now())
    acknowledged.reviewed_through = last
    return acknowledged


def _on_store(
    store: Store | None, store_file: Path | None, *, after: int, limit: int = -1
) -> tuple[int, list[LogEntry]]:
    """How many events the store quarantined after ``after``, and the first ``limit`` of
    them: the open store's, else those in its file (a process with the store off does
    not see them otherwise, and another process may be writing it)."""
    if store is not None:
        found = store.quarantined(after=after, limit=None if limit < 0 else limit)
        return store.count_quarantined(after=after), found
    if store_file is None:
        return 0, []
    in_file = read_quarantine(store_file, after=after, limit=limit)
    return in_file.after, in_file.entries
