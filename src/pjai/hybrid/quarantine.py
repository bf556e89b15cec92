"""Quarantined events: confirmed events that one side could not apply, and their review.

The store keeps such an event in its log with the reason (:meth:`Store.quarantined
<pjai.store.Store.quarantined>`); SQL journals it with the status ``quarantined``. Both
records stay, for the audit trail. Health reports them until an operator acknowledges
them (``pjai repair --ack-quarantine``): the acknowledgement is a position, kept on the
first SQL shard, through which every quarantined event was reviewed; a later one raises
the alarm again. Rebuilding SQL (``pjai repair --side sql``) starts the review over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pjai.schema.records import EventRecord
from pjai.schema.types import utc_now
from pjai.sql import journal
from pjai.sql.shards import ShardSet
from pjai.store import Store

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
    """The quarantined events after the review position, on the store and on SQL."""
    return unreviewed(manager.store, manager.shards)


def unreviewed(store: Store | None, shards: ShardSet) -> QuarantineReport:
    """The quarantined events after the review position, on ``store`` (if open) and on
    ``shards``."""
    first = shards.shards[0]
    with first.writer.connection("reading the quarantine review") as conn:
        reviewed = journal.reviewed(conn)
    result = QuarantineReport(reviewed_through=reviewed)
    found: dict[str, tuple[EventRecord, list[str], str]] = {}
    if store is not None:
        result.store = store.count_quarantined(after=reviewed)
        for entry in store.quarantined(after=reviewed, limit=LISTED):
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
    store = manager.store
    if store is not None and (entries := store.quarantined(after=last)):
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
