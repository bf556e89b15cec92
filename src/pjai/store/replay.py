"""The state made again from the event log: trusting its recorded outcomes (a bulk
load), or deciding each event again (a replay)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import apsw

from pjai.schema.event import Schema
from pjai.schema.ops import Op
from pjai.schema.types import Progress
from pjai.store.apply import EventApplier
from pjai.store.log import EventLog
from pjai.store.sqlite import ENVIRONMENT_ERRORS
from pjai.store.state import StateWriter

__all__ = ["load_logged", "replay_logged"]

log = logging.getLogger(__name__)

PROGRESS_EVERY = 5_000
"""Events between two progress reports."""


def load_logged(
    conn: apsw.Connection,
    events: EventLog,
    state: StateWriter,
    schema: Schema,
    progress: Progress | None,
) -> int | None:
    """Write the events the log records as applied into the (empty) state, in bulk,
    inside the caller's transaction; how many, or ``None`` (and nothing written) if one
    did not apply."""
    total, applied = events.count(), 0

    def ops() -> Iterator[tuple[str, Sequence[Op]]]:
        nonlocal applied
        for done, entry in enumerate(events.entries(), 1):
            if entry.error is None:
                applied += 1
                yield entry.record.name, schema.materialize(entry.record).ops
            _report(progress, done, total)

    conn.execute("SAVEPOINT pjai_load")
    try:
        state.load(ops())
        state.check_references()  # existence checks were skipped
    except ENVIRONMENT_ERRORS:
        raise
    except Exception as exc:
        log.warning("the log's outcomes do not replay (%s); deciding each event again", exc)
        conn.execute("ROLLBACK TO pjai_load")
        conn.execute("RELEASE pjai_load")
        return None
    conn.execute("RELEASE pjai_load")
    return applied


def replay_logged(events: EventLog, applier: EventApplier, progress: Progress | None) -> int:
    """Apply every logged event, deciding each outcome again, and record those that
    changed (and each pending event's new changeset). Returns how many applied."""
    total, applied = events.count(), 0
    outcomes: list[tuple[str, str | None, bytes | None]] = []
    for done, entry in enumerate(events.entries(), 1):
        pending = entry.status == "pending"
        error, changeset = applier.apply_logged(entry.record, capture=pending)
        applied += error is None
        if error != entry.error or pending:
            outcomes.append((entry.record.id, error, changeset))
        _report(progress, done, total)
    for event_id, error, changeset in outcomes:
        events.set_outcome(event_id, error, changeset)
    return applied


def _report(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None and (done % PROGRESS_EVERY == 0 or done == total):
        progress(done, total)
