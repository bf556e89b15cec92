"""The event log as privacy work reads it: the events of a data directory (the store's
log, or SQL's journal with the store off), the persona an event names and the rows it
names (ids are never sealed), its personal content sealed or plain, and the erasures
made here that wait for the sync server."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import msgspec

from pjai.hybrid import HybridDatabaseManager
from pjai.schema import SCHEMA, PersonaErased
from pjai.schema.records import EventRecord
from pjai.schema.sealed import is_envelope

__all__ = [
    "SENSITIVE_FIELDS",
    "content_events",
    "event_args",
    "event_log",
    "pending_erasures",
    "persona_of",
    "persona_row_ids",
]

SENSITIVE_FIELDS = {t.NAME: t.SENSITIVE for t in SCHEMA.event_types if t.SENSITIVE}
"""The sensitive fields (sealed in an encrypted directory) of each event that has some."""


def event_log(
    manager: HybridDatabaseManager, *, named: Collection[str] | None = None
) -> list[EventRecord]:
    """Every event of the log (only those with a name in ``named``, if given): the
    store's, else the SQL journal's; not those of no device of the store (an erasure
    whose proof is missing or another's: :meth:`~pjai.schema.event.Schema.proven`)."""
    store = manager.store
    if store is not None:
        return manager.schema.proven(e.record for e in store.events(named=named))
    return manager.schema.proven(manager.shards.journal(named=named))


def persona_of(record: EventRecord) -> str | None:
    """The persona a record names (``persona_id`` is never sealed), if any."""
    value = event_args(record).get("persona_id")
    return value if isinstance(value, str) else None


_ROW_IDS = {"memory_id": "memories", "conversation_id": "conversations"}


def persona_row_ids(log: list[EventRecord], persona_id: str) -> dict[str, set[str]]:
    """The ids of the persona's rows that its events name, by table (ids are never
    sealed): the persona, its memories and its conversations."""
    found: dict[str, set[str]] = {
        "personas": {persona_id},
        "memories": set(),
        "conversations": set(),
    }
    for record in log:
        args = event_args(record)
        if args.get("persona_id") != persona_id:
            continue
        for key, table in _ROW_IDS.items():
            if isinstance(value := args.get(key), str):
                found[table].add(value)
    return found


def event_args(record: EventRecord) -> dict[str, Any]:
    """The record's arguments, or nothing when they are not a JSON object."""
    try:
        args: Any = msgspec.json.decode(bytes(record.args))
    except msgspec.DecodeError:
        return {}
    return args if isinstance(args, dict) else {}


def content_events(log: list[EventRecord], persona_id: str) -> tuple[int, int]:
    """The persona's events with personal content in the log: those with every sensitive
    field sealed, and those with one plain (written before encryption was on, or before
    that field was sealed)."""
    sealed = plain = 0
    for record in log:
        fields = SENSITIVE_FIELDS.get(record.name)
        if fields is None:
            continue
        args = event_args(record)
        present = [args[f] for f in fields if f in args]
        if not present or args.get("persona_id") != persona_id:
            continue
        if all(is_envelope(value) for value in present):
            sealed += 1
        else:
            plain += 1
    return sealed, plain


def pending_erasures(manager: HybridDatabaseManager) -> set[str]:
    """The personas whose erasure, made here, waits for the sync server (by this
    process or another: the store file is read anew)."""
    store = manager.store
    if store is None:
        return set()
    return {persona_of(r) or "" for r in store.pending() if r.name == PersonaErased.NAME}
