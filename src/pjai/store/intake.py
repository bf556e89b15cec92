"""Events made elsewhere, taken into a store: confirmed ones that continue a standalone
store's head (:meth:`~pjai.store.Store.ingest`, or first in a commit), or another
history's, as a synced store's own pending events numbered after its head
(:meth:`~pjai.store.Store.adopt`)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING

import apsw
import msgspec

from pjai.errors import RebaseError
from pjai.schema.records import EventRecord, Position
from pjai.store.rebase import check_continuation

if TYPE_CHECKING:
    from pjai.store.store import Store

__all__ = ["adopt", "past_head", "take_in"]


def take_in(store: Store, records: Sequence[EventRecord]) -> int:
    """Log and apply confirmed ``records``, which continue the head, inside the
    caller's write transaction; one that does not apply is kept with the reason.
    Returns how many applied."""
    check_continuation(records, store.head)
    applied = store._applier.apply_all_logged(records)
    try:
        if applied is None:  # one or more do not apply: find which, one by one
            applied = 0
            for record in records:
                error, _ = store._apply_logged(record, capture=False)
                store._log.append(record, "confirmed", error=error)
                applied += error is None
        else:
            store._log.append_many([(r, "confirmed", None, None) for r in records])
    except apsw.ConstraintError as exc:
        raise RebaseError(
            f"an event id appears twice in the history ({exc}): these events "
            "are not the continuation of this store's"
        ) from exc
    return applied


def past_head(store: Store, records: Sequence[EventRecord]) -> Sequence[EventRecord]:
    """``records`` without those already logged at their positions; another event at
    one of those positions is another history (:class:`RebaseError`)."""
    known = [r for r in records if r.position.key <= store.head.key]
    if not known:
        return records
    logged = itertools.islice(store._log.entries(after=known[0].parent), len(known))
    for record, entry in itertools.zip_longest(known, logged):
        if entry is None or entry.record.id != record.id:
            raise RebaseError(
                f"event {record.id} at {record.position}: this store holds another "
                "event there (another history)"
            )
    return records[len(known) :]


def adopt(store: Store, records: Sequence[EventRecord]) -> tuple[int, Position]:
    """Log ``records`` as ``store``'s pending events, numbered after its head, inside the
    caller's write transaction; one that does not apply is kept as rejected. Returns how
    many applied and the head they leave."""
    applied = 0
    head = store.head
    for record in records:
        if store._log.status(record.id) is not None:
            raise RebaseError(f"event {record.id} is already in this store")
        moved = msgspec.structs.replace(
            record,
            position=head.next(store.generation),
            parent=Position(head.global_seq, head.client_seq),
            client_id=store.client_id,
        )
        error, changeset = store._apply_logged(moved, capture=True)
        if error is not None:
            store._log.reject(moved, error)
            continue
        store._log.append(moved, "pending", changeset=changeset)
        head = moved.position
        applied += 1
    return applied, head
