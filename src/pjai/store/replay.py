"""The state made again from the event log: trusting its recorded outcomes (a bulk
load), or deciding each event again (a replay). :func:`rebuild` makes a store's state
again from its own log; :func:`load` fills it from another store's."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import apsw

from pjai.errors import StoreError
from pjai.schema.event import Schema
from pjai.schema.ops import Op
from pjai.schema.records import LogEntry
from pjai.schema.types import Progress
from pjai.store.apply import EventApplier
from pjai.store.log import EventLog
from pjai.store.sqlite import ENVIRONMENT_ERRORS
from pjai.store.state import StateWriter

if TYPE_CHECKING:
    from pjai.store.store import Store

__all__ = ["load", "load_logged", "rebuild", "replay_logged"]

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


def rebuild(store: Store, progress: Progress | None, *, trust: bool) -> int:
    """Make ``store``'s state again from its log (:meth:`~pjai.store.Store.rebuild`),
    trusting the outcomes the log records if ``trust`` and the log allows it; returns
    the events applied."""
    with store.lock:
        store._check_open()
        # A logged refusal may hang on what the log does not hold (a key that has
        # arrived since): a log with one is replayed in full.
        trust = (
            trust
            and store._log.meta()["fingerprint"] == store.schema.fingerprint
            and store.pending_count == 0
            and store._log.count_quarantined() == 0
        )
        # Tables of an older schema may reference each other: drop and refill them
        # without foreign key enforcement, then check every reference before commit.
        store._conn.execute("PRAGMA foreign_keys=OFF")
        try:
            with store._write("rebuilding state from the event log") as deliveries:
                store._state.drop_all()
                store._state.create(indexes=False)
                store._tracker.forget_columns()
                applied = None
                if trust:
                    applied = load_logged(
                        store._conn, store._log, store._state, store.schema, progress
                    )
                if applied is None:
                    applied = replay_logged(store._log, store._applier, progress)
                    store._state.check_references()  # the load checked its own
                store._state.create_indexes()
                store._log.set_meta(fingerprint=store.schema.fingerprint)
        finally:
            store._conn.execute("PRAGMA foreign_keys=ON")
    store._deliver(deliveries)
    return applied


def load(store: Store, entries: Sequence[LogEntry], *, indexes: bool) -> int:
    """Fill the state of ``store``, whose log is empty, with the state ``entries`` make
    (:meth:`~pjai.store.Store.load`); returns the events applied."""
    applied = [e.record for e in entries if e.error is None]
    with store.lock:
        store._check_open()
        if store._log.count() or store._log.count("rejected"):
            raise StoreError("only a store with an empty log takes a load")
        store._conn.execute("PRAGMA foreign_keys=OFF")
        try:
            doing = f"loading the state of {len(entries)} event(s)"
            with store._write(doing) as deliveries:
                store._state.drop_all()
                store._state.create(indexes=False)
                store._tracker.forget_columns()
                materialize = store.schema.materialize
                store._state.load((r.name, materialize(r).ops) for r in applied)
                if indexes:
                    store._state.create_indexes()
                store._state.check_references()
        finally:
            store._conn.execute("PRAGMA foreign_keys=ON")
    store._deliver(deliveries)
    return len(applied)


def _report(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None and (done % PROGRESS_EVERY == 0 or done == total):
        progress(done, total)
