"""Applying events to the state: strictly on commit, tolerantly on replay and rebase."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import apsw

from pjai.errors import EventError, UnknownEventWarning
from pjai.schema.event import Materialized, Schema
from pjai.schema.ops import Op
from pjai.schema.records import EventRecord
from pjai.schema.render import writes
from pjai.store.sqlite import ENVIRONMENT_ERRORS
from pjai.store.state import StateWriter

__all__ = ["EventApplier"]

log = logging.getLogger(__name__)


def _refusal(record: EventRecord, error: Exception) -> str:
    log.error("event %s (%s) cannot be applied", record.id, record.name, exc_info=error)
    return f"event {record.name}: cannot be applied: {error!r}"


class EventApplier:
    """Runs materializers and writes their operations to the store's state tables."""

    def __init__(self, conn: apsw.Connection, schema: Schema, state: StateWriter) -> None:
        self._conn = conn
        self._schema = schema
        self._state = state
        self._warned: set[str] = set()

    def apply(self, event: Materialized, *, capture: bool) -> bytes | None:
        """Apply one validated event or raise; with ``capture``, return its changeset."""
        return self._write(event.record.name, event.ops, capture=capture)

    def apply_all(self, events: Sequence[Materialized]) -> None:
        """Apply validated events, all or none, as one batch (no changesets); raise for
        the first that is refused."""
        self._state.apply_many([(event.record.name, event.ops) for event in events])

    def apply_all_logged(self, records: Sequence[EventRecord]) -> int | None:
        """Apply logged events as one batch if every one of them applies: then how many
        (all), else ``None`` with the state as before (apply them one by one to learn
        which are refused)."""
        if not all(self._schema.knows(record.name) for record in records):
            return None
        try:
            events = [self._schema.materialize(record) for record in records]
        except EventError:
            return None
        except Exception as exc:  # a materializer bug: the one-by-one pass logs it
            log.debug("a batch of %d events does not materialize: %r", len(records), exc)
            return None
        try:
            self.apply_all(events)
        except ENVIRONMENT_ERRORS:
            raise
        except Exception:
            return None
        return len(records)

    def apply_logged(
        self, record: EventRecord, *, capture: bool
    ) -> tuple[str | None, bytes | None]:
        """Apply a logged event inside the current transaction, tolerating refusal.

        Returns ``(error, changeset)``: the reason the event was not applied (state is
        then as before it), or ``None`` and, with ``capture``, its changeset. Any failure
        of the event itself is a refusal, whatever raised it, so that no event can stop
        a replay or a rebase; only the environment's failures (disk full, I/O, a
        corrupt file) propagate.
        """
        if not self._schema.knows(record.name):
            if record.name not in self._warned:
                self._warned.add(record.name)
                warnings.warn(
                    f"event {record.name} is not known to this PJai (written by a newer "
                    "version?); it is kept in the log and not applied",
                    UnknownEventWarning,
                    stacklevel=5,
                )
            return f"event {record.name}: unknown to this version", None
        try:
            ops = self._schema.materialize(record).ops
        except EventError as exc:
            return str(exc), None
        except Exception as exc:
            return _refusal(record, exc), None
        # A failing statement undoes itself; only several writes need a savepoint to
        # undo the ones before the failure.
        savepoint = writes(ops) > 1
        if savepoint:
            self._conn.execute("SAVEPOINT pjai_event")
        try:
            changeset = self._write(record.name, ops, capture=capture)
        except ENVIRONMENT_ERRORS:
            raise
        except Exception as exc:
            if savepoint:
                self._conn.execute("ROLLBACK TO pjai_event")
                self._conn.execute("RELEASE pjai_event")
            return (str(exc) if isinstance(exc, EventError) else _refusal(record, exc)), None
        if savepoint:
            self._conn.execute("RELEASE pjai_event")
        return None, changeset

    def _write(self, name: str, ops: Sequence[Op], *, capture: bool) -> bytes | None:
        if not capture:
            self._state.apply(name, ops)
            return None
        session = apsw.Session(self._conn, "main")
        try:
            for table in self._state.tables:
                session.attach(table)
            self._state.apply(name, ops)
            return session.changeset()
        finally:
            session.close()
