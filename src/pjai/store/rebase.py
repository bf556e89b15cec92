"""Rebase: put pending local events on top of confirmed upstream history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import apsw
import msgspec

from pjai.errors import RebaseError, StoreError
from pjai.schema.records import EventRecord, EventStatus, LogEntry, Position
from pjai.store.conflicts import explain
from pjai.store.log import EventLog, Move

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


def check_identities(
    upstream: Sequence[EventRecord], pending: Sequence[EventRecord], log: EventLog
) -> None:
    """Refuse upstream events that reuse an id: of another upstream event, of an event
    this store has confirmed, or of a pending event of this store's with other content
    (confirming it would keep ours here while the others apply the server's)."""
    seen: set[str] = set()
    ours = {record.id: record for record in pending}
    for record in upstream:
        if record.id in seen:
            raise RebaseError(f"upstream event {record.id} comes twice; pull again")
        seen.add(record.id)
        mine = ours.get(record.id)
        if mine is not None and _content(mine) != _content(record):
            raise RebaseError(
                f"upstream event {record.id} at {record.position} has the id of a pending "
                "event of this store's with other content: the server altered it"
            )
    if settled := log.settled(list(seen)):
        raise RebaseError(f"upstream event {settled[0]} is in this store's log already; pull again")


def _content(record: EventRecord) -> tuple[str, bytes, object]:
    """What an event does, and when: the client and session that sent it may differ (an
    archive's events adopted on two devices, then pushed by one)."""
    return record.name, bytes(record.args), record.at


def rebase(
    store: Store, log: EventLog, upstream: Sequence[EventRecord], pending: Sequence[EventRecord]
) -> tuple[RebaseResult, list[EventRecord]]:
    """Rebase ``store``'s ``pending`` events onto ``upstream``, inside its open transaction.

    Returns what it did and the pending events after it, in order.
    """
    check_continuation(upstream, log.confirmed_head())
    check_identities(upstream, pending, log)
    echoed = _echoed(pending, upstream)
    confirmed = [record.id for record in pending[:echoed]]
    log.set_status(confirmed, "confirmed")
    incoming, local = upstream[echoed:], pending[echoed:]
    if not incoming:
        return RebaseResult(confirmed=confirmed), list(local)
    theirs = _theirs(incoming, local) if local else None
    if theirs is not None and _applied_on_top(store, theirs, local):
        # The pending events stay applied, their changesets exact: only renumbered.
        ours = len(incoming) - len(theirs)
        generation = store._bump_generation() if ours < len(local) else store.generation
        rest = _renumbered(local[ours:], incoming[-1].position, generation)
        log.move([*_moves(incoming, local[:ours], "confirmed"), *_moves(rest, local[ours:])])
        log.append_many([(record, "confirmed", None, None) for record in theirs])
        confirmed += [record.id for record in local[:ours]]
        return RebaseResult(confirmed, len(theirs), rest), rest

    entries = log.pending()
    _roll_back(store, entries)
    log.delete([entry.record.id for entry, _ in entries])

    upstream_ids = set()
    quarantined: list[tuple[EventRecord, str]] = []
    for record in incoming:
        error, _ = store._apply_logged(record, capture=False)
        log.append(record, "confirmed", error=error)
        upstream_ids.add(record.id)
        if error is not None:
            quarantined.append((record, error))

    mine = [entry.record for entry, _ in entries if entry.record.id not in upstream_ids]
    rebased, rejected = _reapply(store, log, mine, incoming[-1].position, rivals=incoming)
    local_ids = {entry.record.id for entry, _ in entries}
    confirmed += [r.id for r in incoming if r.id in local_ids]
    return RebaseResult(confirmed, len(incoming), rebased, rejected, quarantined), list(rebased)


def planned(
    store: Store,
    upstream: Sequence[EventRecord],
    pending: Sequence[EventRecord],
    limit: int | None = None,
) -> list[EventRecord] | None:
    """The first ``limit`` (all) ``pending`` events as :func:`rebase` onto ``upstream``
    will leave them, or ``None`` if only the rebase can tell (upstream events meet
    pending ones). Reads only."""
    try:
        check_continuation(upstream, store.confirmed_head)
    except RebaseError:
        return None
    echoed = _echoed(pending, upstream)
    incoming, local = upstream[echoed:], pending[echoed:]
    if not incoming or not local:
        return list(local[:limit])
    theirs = _theirs(incoming, local)
    if theirs is None or not store._footprints.commute(theirs, local):
        return None
    ours = len(incoming) - len(theirs)
    rest = local[ours:][:limit]
    return _renumbered(rest, incoming[-1].position, store.generation + 1)


def _echoed(pending: Sequence[EventRecord], upstream: Sequence[EventRecord]) -> int:
    """How many pending events ``upstream`` starts with, same ids at the same positions."""
    echoed = 0
    for ours, record in zip(pending, upstream, strict=False):
        if ours.id != record.id or ours.position.key != record.position.key:
            break
        echoed += 1
    return echoed


def _theirs(
    incoming: Sequence[EventRecord], local: Sequence[EventRecord]
) -> list[EventRecord] | None:
    """Other clients' events in ``incoming``, if the rest are the first ``local`` events in
    order (pushed and confirmed, maybe after events of others); ``None`` if not."""
    local_ids = {record.id for record in local}
    theirs: list[EventRecord] = []
    ours = 0
    for record in incoming:
        if record.id not in local_ids:
            theirs.append(record)
        elif ours < len(local) and local[ours].id == record.id:
            ours += 1
        else:
            return None
    return theirs


def _applied_on_top(
    store: Store, theirs: Sequence[EventRecord], local: Sequence[EventRecord]
) -> bool:
    """Apply ``theirs`` on top of the pending ``local`` events, if the order makes no
    difference (:mod:`pjai.store.commute`); whether it did."""
    if not theirs:
        return True
    if not store._footprints.commute(theirs, local):
        return False
    conn = store._conn
    conn.execute("SAVEPOINT pjai_rebase")
    for record in theirs:
        error, _ = store._apply_logged(record, capture=False)
        if error is not None:  # it may apply under the pending events: find out in full
            conn.execute("ROLLBACK TO pjai_rebase")
            conn.execute("RELEASE pjai_rebase")
            return False
    conn.execute("RELEASE pjai_rebase")
    return True


def _moves(
    moved: Sequence[EventRecord], local: Sequence[EventRecord], status: EventStatus = "pending"
) -> list[Move]:
    """Each of ``local`` to where its namesake in ``moved`` is, with ``status``."""
    at = {record.id: record for record in moved}
    return [(record.position.global_seq, at[record.id], status) for record in local]


def _renumbered(
    records: Sequence[EventRecord], head: Position, generation: int
) -> list[EventRecord]:
    """``records`` moved to follow ``head``, one after another, in ``generation``."""
    moved: list[EventRecord] = []
    for record in records:
        record = _moved(record, head, generation)
        moved.append(record)
        head = record.position
    return moved


def _moved(record: EventRecord, head: Position, generation: int) -> EventRecord:
    """``record`` right after ``head``, in ``generation``. The parent is kept as the log
    keeps it, without a generation: records read back from the log equal it."""
    parent = Position(head.global_seq, head.client_seq)
    return msgspec.structs.replace(record, position=head.next(generation), parent=parent)


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
    _roll_back(store, local)
    log.delete([entry.record.id for entry, _ in local])
    dropped = local[0][0].record
    log.reject(dropped, reason)
    rest = [entry.record for entry, _ in local[1:]]
    rebased, rejected = _reapply(store, log, rest, dropped.parent)
    return RebaseResult(rebased=rebased, rejected=[(dropped, reason), *rejected])


def _reapply(
    store: Store,
    log: EventLog,
    records: Sequence[EventRecord],
    head: Position,
    *,
    rivals: Sequence[EventRecord] = (),
) -> tuple[list[EventRecord], list[tuple[EventRecord, str]]]:
    """Apply rolled-back pending ``records`` again, one after another from ``head``, in
    a new generation: those that apply stay pending, the others are rejected with the
    reason (naming the one of ``rivals`` that won the conflict, if one did)."""
    rebased: list[EventRecord] = []
    rejected: list[tuple[EventRecord, str]] = []
    if not records:
        return rebased, rejected
    generation = store._bump_generation()
    for record in records:
        moved = _moved(record, head, generation)
        error, changeset = store._apply_logged(moved, capture=True)
        if error is None:
            log.append(moved, "pending", changeset=changeset)
            rebased.append(moved)
            head = moved.position
        else:
            reason = explain(store.schema, moved, error, rivals) if rivals else error
            log.reject(moved, reason)
            rejected.append((moved, reason))
    return rebased, rejected


def _roll_back(store: Store, entries: Sequence[tuple[LogEntry, bytes | None]]) -> None:
    """Undo pending events: their changesets, combined, inverted and applied at once."""
    changesets = [c for entry, c in entries if entry.error is None and c]
    if not changesets:
        return
    combined = apsw.ChangesetBuilder()  # type: ignore[no-untyped-call]
    for changeset in changesets:
        combined.add(changeset)
    undo = apsw.Changeset.invert(combined.output())
    combined.close()

    def conflict(_reason: int, _change: apsw.TableChange) -> int:
        return apsw.SQLITE_CHANGESET_ABORT

    try:
        apsw.Changeset.apply(undo, store._conn, conflict=conflict)
    except apsw.AbortError as exc:
        first = entries[0][0].record
        raise StoreError(
            f"cannot roll back the {len(entries)} pending event(s) from {first.id} "
            f"({first.name}) on: the state no longer matches their changesets. Rebuild "
            "the state with `pjai store rebuild`."
        ) from exc
