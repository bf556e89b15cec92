"""Rebase: put pending local events on top of confirmed upstream history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import apsw
import msgspec

from pjai.errors import RebaseError, StoreError
from pjai.schema.records import EventRecord, LogEntry, Position
from pjai.store.conflicts import explain
from pjai.store.log import EventLog

if TYPE_CHECKING:
    from pjai.store.store import Store

__all__ = ["RebaseResult", "discard", "rebase"]


@dataclass(frozen=True, slots=True)
class RebaseResult:
    """What a rebase did.

    ``confirmed``: ids of local events the upstream echoed. ``applied``: upstream events
    taken into the log. ``rebased``: pending events re-applied at new positions.
    ``rejected``: pending events that no longer applied, with the reason.
    ``quarantined``: upstream events that could not be applied here, with the reason
    (kept in the log, see :meth:`pjai.store.Store.quarantined`).
    """

    confirmed: list[str] = field(default_factory=list)
    applied: int = 0
    rebased: list[EventRecord] = field(default_factory=list)
    rejected: list[tuple[EventRecord, str]] = field(default_factory=list)
    quarantined: list[tuple[EventRecord, str]] = field(default_factory=list)


def check_continuation(upstream: Sequence[EventRecord], confirmed_head: Position) -> None:
    """Refuse upstream events that do not chain, one by one, from ``confirmed_head``."""
    parent = confirmed_head
    for record in upstream:
        if record.parent.key != parent.key:
            raise RebaseError(
                f"upstream event {record.id} at {record.position} has parent {record.parent}, "
                f"but the confirmed history ends at {parent}; pull from {parent} again"
            )
        if record.position.key != (parent.global_seq + 1, 0):
            raise RebaseError(
                f"upstream event {record.id} is at {record.position}; expected {parent.next(0)}"
            )
        parent = record.position


def rebase(store: Store, log: EventLog, upstream: Sequence[EventRecord]) -> RebaseResult:
    """Rebase ``store``'s pending events onto ``upstream``, inside its open transaction."""
    check_continuation(upstream, log.confirmed_head())
    pending = log.pending()
    echoed = 0
    for (entry, _), record in zip(pending, upstream, strict=False):
        if entry.record.id != record.id or entry.record.position.key != record.position.key:
            break
        echoed += 1
    result = RebaseResult(confirmed=[entry.record.id for entry, _ in pending[:echoed]])
    log.set_status(result.confirmed, "confirmed")
    incoming, local = upstream[echoed:], pending[echoed:]
    if not incoming:
        return result

    for entry, changeset in reversed(local):
        _roll_back(store, entry, changeset)
    log.delete([entry.record.id for entry, _ in local])

    upstream_ids = set()
    quarantined: list[tuple[EventRecord, str]] = []
    for record in incoming:
        error, _ = store._apply_logged(record, capture=False)
        log.append(record, "confirmed", error=error)
        upstream_ids.add(record.id)
        if error is not None:
            quarantined.append((record, error))
    applied = len(incoming)

    rebased: list[EventRecord] = []
    rejected: list[tuple[EventRecord, str]] = []
    mine = [entry.record for entry, _ in local if entry.record.id not in upstream_ids]
    if mine:
        generation = store._bump_generation()
        head = incoming[-1].position
        for record in mine:
            moved = msgspec.structs.replace(record, position=head.next(generation), parent=head)
            error, changeset = store._apply_logged(moved, capture=True)
            if error is None:
                log.append(moved, "pending", changeset=changeset)
                rebased.append(moved)
                head = moved.position
            else:
                reason = explain(store.schema, moved, error, incoming)
                log.reject(moved, reason)
                rejected.append((moved, reason))
    local_ids = {entry.record.id for entry, _ in local}
    confirmed = result.confirmed + [r.id for r in incoming if r.id in local_ids]
    return RebaseResult(confirmed, applied, rebased, rejected, quarantined)


def discard(store: Store, log: EventLog, event_id: str, reason: str) -> RebaseResult:
    """Reject one pending event (an upstream refused it), inside the open transaction.

    It and the pending events after it are rolled back; it is kept as rejected with
    ``reason``, and the others are re-applied in its place, at new positions.
    """
    pending = log.pending()
    index = next((i for i, (e, _) in enumerate(pending) if e.record.id == event_id), None)
    if index is None:
        raise StoreError(f"no pending event {event_id!r} to reject")
    local = pending[index:]
    for entry, changeset in reversed(local):
        _roll_back(store, entry, changeset)
    log.delete([entry.record.id for entry, _ in local])
    dropped = local[0][0].record
    log.reject(dropped, reason)
    result = RebaseResult(rejected=[(dropped, reason)])
    rest = [entry.record for entry, _ in local[1:]]
    if rest:
        generation = store._bump_generation()
        head = dropped.parent
        for record in rest:
            moved = msgspec.structs.replace(record, position=head.next(generation), parent=head)
            error, changeset = store._apply_logged(moved, capture=True)
            if error is None:
                log.append(moved, "pending", changeset=changeset)
                result.rebased.append(moved)
                head = moved.position
            else:
                log.reject(moved, error)
                result.rejected.append((moved, error))
    return result


def _roll_back(store: Store, entry: LogEntry, changeset: bytes | None) -> None:
    if entry.error is not None or not changeset:
        return

    def conflict(_reason: int, _change: apsw.TableChange) -> int:
        return apsw.SQLITE_CHANGESET_ABORT

    try:
        apsw.Changeset.apply(apsw.Changeset.invert(changeset), store._conn, conflict=conflict)
    except apsw.AbortError as exc:
        raise StoreError(
            f"cannot roll back pending event {entry.record.id} ({entry.record.name}): the "
            "state no longer matches its changeset. Rebuild the state with `pjai store rebuild`."
        ) from exc
