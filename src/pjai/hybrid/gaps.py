"""Gaps in SQL's journal, and what SQL is rebuilt from around them.

A commit over several shards that was cut off between their commits leaves events in
SQL's journal past a gap: they were never acknowledged, and nothing may follow them as
if the events before them were there. :func:`unbroken` finds where a run of records
breaks, and :func:`journal_break` says so and what to do; :func:`whole_start` and
:func:`holding_journal` are the sources a rebuild of SQL takes its history from
(:meth:`Bridge.replace_all`): SQL's own journal up to where it breaks with the store
off, else the store's log, refused while the journal holds an event the log lacks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pjai.errors import ConfigError, StoreCorruptError
from pjai.schema.records import ROOT, EventRecord, Position

__all__ = ["holding_journal", "journal_break", "unbroken", "whole_start"]

log = logging.getLogger(__name__)


def unbroken(records: Sequence[EventRecord], head: Position) -> list[EventRecord]:
    """The records that continue ``head`` one after another, up to the first gap."""
    chain: list[EventRecord] = []
    last = head
    for record in records:
        if record.parent.key != last.key:
            break
        chain.append(record)
        last = record.position
    return chain


def journal_break(at: Position, missing: Sequence[EventRecord]) -> str:
    """What is wrong when SQL's journal, read after the store's head, breaks after
    ``at``: the events of ``missing`` past it are not taken in, and this says what to do."""
    after = [r for r in missing if r.position.key > at.key]
    return (
        f"SQL's journal breaks after {at}: it holds {len(after)} event(s) from "
        f"{after[0].position} on without the events before them (a commit over several "
        "shards was cut off between their commits). They are not in the store; `pjai "
        "verify` lists what differs, and `pjai repair --side sql` makes SQL hold the "
        "store's history again (dropping them)"
    )


def whole_start(records: Sequence[EventRecord]) -> list[EventRecord]:
    """SQL's journal up to where it breaks, with the store off: the events past a gap
    are those of a commit over several shards cut off between their commits, never
    acknowledged (commits wait while the journal breaks). Kept, they would stay past a
    gap the store could never take in."""
    chain = unbroken(records, records[0].parent) if records else []
    if len(chain) < len(records):
        log.warning(
            "SQL's journal breaks after %s: its %d later event(s), of a commit cut off "
            "between shards, are dropped",
            chain[-1].position if chain else records[0].parent,
            len(records) - len(chain),
        )
    return chain


def holding_journal(
    records: Sequence[EventRecord], last: tuple[int, int], journal: Sequence[EventRecord]
) -> Sequence[EventRecord]:
    """``records``, the store's log up to ``last``, to rebuild SQL from; refused when SQL's
    ``journal`` holds an event they lack that is not past a gap (those of a commit over
    several shards cut off between their commits, never acknowledged): emptying the
    journal would lose its last copy."""
    held = {record.id for record in records}
    lacking = [r for r in journal if r.position.key <= last and r.id not in held]
    if lacking:
        raise StoreCorruptError(
            f"SQL's journal holds {len(lacking)} event(s) the store's log lacks (the first "
            f"at {lacking[0].position}, {lacking[0].id}), so SQL is not rebuilt from the log: "
            "rebuilding it would lose them. Restore the data directory from a backup"
        )
    later = unbroken(
        [r for r in journal if r.position.key > last], records[-1].position if records else ROOT
    )
    if later:
        raise ConfigError(
            f"SQL took {len(later)} event(s) from {later[0].position} on after the store had "
            "been brought up to it for the repair (another process committed with the store "
            "off): SQL is not rebuilt, which would lose them. Run the repair again; it takes "
            "them into the store first"
        )
    return records
