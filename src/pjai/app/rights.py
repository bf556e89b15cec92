"""Consents and the privacy report: what a data subject agreed to, and what is held.

Consents are events (``v1.ConsentRecorded``): the newest per persona and purpose is in
force (the ``consents`` table), every one stays in the audit trail. The report
summarises, per persona, the data held, its privacy switches, retention, consents,
keys and what the event log holds sealed or in plaintext, and the erasures made here.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

import msgspec
from sqlalchemy import func, select

from pjai.app.erasing import copies_left, rewrites_owed
from pjai.hybrid import HybridDatabaseManager
from pjai.memory.classify import RESTRICTED
from pjai.schema import SCHEMA, ConsentRecorded, PersonaCreated, PersonaErased
from pjai.schema.expressions import in_parts
from pjai.schema.models import Persona, persona_from_row
from pjai.schema.records import EventRecord
from pjai.schema.sealed import is_envelope
from pjai.schema.tables import (
    bookmarks,
    consents,
    conversation_messages,
    conversations,
    memories,
    personas,
)
from pjai.security import STORE_SCOPE, FieldCodec, KeyRing
from pjai.store import Query, Row, Store

__all__ = [
    "Consent",
    "PersonaPrivacy",
    "PrivacyReport",
    "consents_of",
    "content_events",
    "erased_keys",
    "erased_keys_held",
    "erased_lineages",
    "erased_personas",
    "event_log",
    "pending_erasures",
    "persona_of",
    "persona_row_ids",
    "persona_rows",
    "privacy_report",
    "record_consent",
    "replaced_keys_held",
    "unfinished_erasures",
]

_SENSITIVE = {t.NAME: t.SENSITIVE for t in SCHEMA.event_types if t.SENSITIVE}


@dataclass(frozen=True, slots=True)
class Consent:
    """The consent in force for one purpose."""

    purpose: str
    granted: bool
    version: str
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class PersonaPrivacy:
    """One persona in the privacy report."""

    persona_id: str
    name: str
    deleted: bool
    switches: dict[str, bool]
    retention: str
    """How long memories are kept: ``N days, then archive|delete`` or ``no limit``."""
    memories: int
    restricted_memories: int
    conversations: int
    messages: int
    bookmarks: int
    consents: list[Consent]
    data_keys: int
    sealed_events: int
    plaintext_events: int


@dataclass(frozen=True, slots=True)
class PrivacyReport:
    """The privacy report of a data directory."""

    encrypted: bool
    personas: list[PersonaPrivacy]
    erasures: list[str]
    """The ids of the personas erased here (``v1.PersonaErased`` events)."""
    erased_keys: int
    unfinished_erasures: list[str] = field(default_factory=list)
    """Erased personas whose data keys the key ring still holds (an erasure stopped
    before it destroyed them, or one made on another device whose keys' deletion has
    not come yet), or whose erasure has not rewritten every file (a process stopped
    after the erasure event or the keys went, a file that could not be rewritten yet:
    :mod:`pjai.app.erasing`):
    the next opening of the directory finishes them
    (:func:`~pjai.app.privacy.finish_erasures`), as ``pjai privacy erase ID`` does."""
    waiting_for_copies: list[str] = field(default_factory=list)
    """Those of :attr:`unfinished_erasures` whose files are all rewritten but for the
    damaged copies a repair set aside (``*.damaged-*``), which no rewrite reaches:
    deleting the copies finishes them."""


def record_consent(
    manager: HybridDatabaseManager, persona_id: str, purpose: str, *, granted: bool, version: str
) -> Consent:
    """Record that the persona's data subject granted (or withdrew) consent for
    ``purpose`` under the notice ``version``; returns the consent now in force."""
    manager.commit(
        ConsentRecorded(persona_id=persona_id, purpose=purpose, granted=granted, version=version)
    )
    (found,) = [c for c in consents_of(manager, persona_id) if c.purpose == purpose]
    return found


def consents_of(manager: HybridDatabaseManager, persona_id: str) -> list[Consent]:
    """The consents in force for a persona, by purpose."""
    c = consents.c
    rows = manager.query(
        select(c.purpose, c.granted, c.version, c.recorded_at)
        .where(c.persona_id == persona_id)
        .order_by(c.purpose)
    )
    return [Consent(r.purpose, bool(r.granted), r.version, r.recorded_at) for r in rows]


def privacy_report(manager: HybridDatabaseManager, persona_id: str | None = None) -> PrivacyReport:
    """The report for one persona, or for every persona (deleted ones too)."""
    query = select(personas).order_by(personas.c.name, personas.c.id)
    if persona_id is not None:
        query = query.where(personas.c.id == persona_id)
    codec = manager.schema.codec
    ring = codec.keys if isinstance(codec, FieldCodec) else None
    keys = ring.scopes() if ring is not None else {}
    log = event_log(manager)
    found = []
    for row in manager.query(query):
        persona = persona_from_row(row)
        sealed, plain = content_events(log, persona.id)
        found.append(
            PersonaPrivacy(
                persona_id=persona.id,
                name=persona.name,
                deleted=persona.deleted_at is not None,
                switches=msgspec.to_builtins(persona.privacy),
                retention=_retention(persona),
                memories=persona_rows(manager, memories, persona.id),
                restricted_memories=_restricted(manager, persona.id),
                conversations=persona_rows(manager, conversations, persona.id),
                messages=persona_rows(manager, conversation_messages, persona.id),
                bookmarks=persona_rows(manager, bookmarks, persona.id),
                consents=consents_of(manager, persona.id),
                data_keys=keys.get(persona.id, 0),
                sealed_events=sealed,
                plaintext_events=plain,
            )
        )
    erasures = [persona_of(r) or "" for r in log if r.name == PersonaErased.NAME]
    unfinished = unfinished_erasures(manager)
    return PrivacyReport(
        encrypted=ring is not None,
        personas=found,
        erasures=erasures,
        erased_keys=len(ring.erased()) if ring is not None else 0,
        unfinished_erasures=unfinished,
        waiting_for_copies=sorted(copies_left(manager.data_dir) & set(unfinished)),
    )


def unfinished_erasures(manager: HybridDatabaseManager) -> list[str]:
    """The erased personas whose erasure is not finished, by id (see
    :attr:`PrivacyReport.unfinished_erasures`). Of the log, only the erasure events are
    read, and only when the ring holds keys of a persona the directory has no row of
    (an erasure leaves no row; a device's keys may come before the persona's events);
    the creation events too when it holds keys of one erased, to tell whether they are
    the erased persona's or those of a persona given its id again
    (:func:`erased_lineages`)."""
    codec = manager.schema.codec
    held = _held_keys(codec)
    # Of either, only personas with no row: an erasure leaves none.
    owed = set(rewrites_owed(manager.data_dir))
    live = _with_row(manager.query, held | owed)
    held -= live
    owed -= live
    if held and isinstance(codec, FieldCodec):
        held = set(_erased_held(codec.keys, held, partial(event_log, manager)))
    return sorted(held | owed)


def erased_personas(manager: HybridDatabaseManager) -> set[str]:
    """The personas erased in this directory, by id, as its log tells (an erasure leaves
    no row): only the erasure events are read."""
    return {p for p in _erased(event_log(manager, named=_ERASURES)) if p is not None}


def erased_keys_held(store: Store) -> dict[str, set[str]]:
    """The personas whose data keys the store's key ring still holds though its log
    holds their erasure and its state no row of them (an erasure stopped before its
    keys went, or one made on another device whose keys' deletion has not come), read
    from the store alone, by id; with the lineages of keys their erasures destroy
    (:func:`erased_lineages`). A key of a persona given an erased persona's id again,
    come before the new persona's events, is not among them."""
    codec = store.schema.codec
    held = _held_keys(codec)
    held -= _with_row(store.query, held)
    if not held or not isinstance(codec, FieldCodec):
        return {}

    def read(*, named: Collection[str]) -> list[EventRecord]:
        return [e.record for e in store.events(named=named)]

    return _erased_held(codec.keys, held, read)


def _erased_held(
    ring: KeyRing, held: set[str], read: Callable[..., list[EventRecord]]
) -> dict[str, set[str]]:
    """Of the personas ``held`` (keys held, no row), those with keys of a lineage their
    erasures destroy, with those lineages; ``read(named=...)`` reads events of the log
    by name: the erasure events, then, for personas erased, the creation events too."""
    held &= {p for p in _erased(read(named=_ERASURES)) if p is not None}
    if not held:
        return {}
    erased = erased_lineages(read(named=_ERASURES + _CREATIONS), ring)
    found = {}
    for persona_id in sorted(held):
        lineages = erased.get(persona_id, set())
        held_lineages = ring.lineages(persona_id).values()
        if any(lineage is None or lineage in lineages for lineage in held_lineages):
            found[persona_id] = lineages
    return found


def replaced_keys_held(
    ring: KeyRing, read: Callable[..., list[EventRecord]], query: Callable[[Query], list[Row]]
) -> dict[str, set[str]]:
    """The personas given an erased persona's id again (a row of the new one, and the
    erasure of the old in the log) whose ring still holds keys of the erased one (of a
    lineage her erasures destroy, or with none), by id, with the lineages to destroy
    (:meth:`~pjai.security.KeyRing.erase`): never the one the new persona's creation
    started, and none when that creation tells no lineage (a persona created before
    encryption was on, or by a PJai from before lineages: its keys have none, and the
    erasure would take them). ``read(named=...)`` reads events of the log by name (the
    erasure events, then, for personas erased with keys held, the creation events
    too); ``query`` reads the state."""
    held = set(ring.scopes()) - {STORE_SCOPE}
    held &= {p for p in _erased(read(named=_ERASURES)) if p is not None}
    held &= _with_row(query, held)
    if not held:
        return {}
    log = read(named=_ERASURES + _CREATIONS)
    erased = erased_lineages(log, ring)
    made = _made_with(log)
    found = {}
    for persona_id in sorted(held):
        keys = ring.lineages(persona_id)
        own = made.get(persona_id)
        lineage = keys.get(own) if own in keys else own
        if lineage is None:
            continue
        lineages = erased.get(persona_id, set()) - {lineage}
        if any(key is None or key in lineages for key in keys.values()):
            found[persona_id] = lineages
    return found


def _made_with(log: Iterable[EventRecord]) -> dict[str, str | None]:
    """For each persona ``log`` creates, the id of the key its newest creation was sealed
    with (``None``: one sealed with none)."""
    made: dict[str, str | None] = {}
    for record in log:
        fields = _SENSITIVE.get(record.name)
        if fields is None or record.name not in _CREATIONS:
            continue
        args = _ids(record)
        persona_id = args.get("persona_id")
        if isinstance(persona_id, str):
            made[persona_id] = next(iter(sorted(_sealed_with(args, fields))), None)
    return made


def erased_keys(log: Iterable[EventRecord]) -> dict[str, set[str]]:
    """For each persona ``log`` erased, the ids of the data keys that sealed the events
    of each persona of that id erased, from its creation to its erasure: with the whole
    log, every key it used; with the creation and erasure events alone, the key its
    creation was sealed with, the first of its lineage."""
    since: dict[str, set[str]] = {}
    erased: dict[str, set[str]] = {}
    for record in log:
        fields = _SENSITIVE.get(record.name)
        if fields is None and record.name != PersonaErased.NAME:
            continue  # seals nothing: not read
        args = _ids(record)
        persona_id = args.get("persona_id")
        if not isinstance(persona_id, str):
            continue
        if record.name in _CREATIONS:
            since[persona_id] = set()
        if fields is None:  # the erasure
            erased.setdefault(persona_id, set()).update(since.pop(persona_id, set()))
        else:
            since.setdefault(persona_id, set()).update(_sealed_with(args, fields))
    return erased


def _sealed_with(args: dict[str, Any], fields: tuple[str, ...]) -> set[str]:
    """The ids of the data keys that sealed ``fields`` of an event's ``args``."""
    found = set()
    for name in fields:
        value = args.get(name)
        if isinstance(value, dict) and is_envelope(value) and isinstance(value.get("key"), str):
            found.add(value["key"])
    return found


def erased_lineages(log: Iterable[EventRecord], ring: KeyRing) -> dict[str, set[str]]:
    """For each persona ``log`` erased, the lineages of data keys its erasures destroy
    (:meth:`~pjai.security.KeyRing.erase`, which destroys the keys with no lineage too):
    those of the keys that sealed its events (:func:`erased_keys`), as ``ring`` holds
    them, or, for a key it does not hold, the one that key started if it was a first
    key. A persona given the id of one erased starts a lineage of its own as it is
    created, on whatever device: its keys are not among these."""
    found = {}
    for persona_id, keys in erased_keys(log).items():
        held = ring.lineages(persona_id)
        found[persona_id] = {held.get(key) or key for key in keys}
    return found


def _held_keys(codec: object) -> set[str]:
    """The personas whose data keys ``codec``'s key ring holds."""
    return set(codec.keys.scopes()) - {STORE_SCOPE} if isinstance(codec, FieldCodec) else set()


def _with_row(query: Callable[[Query], list[Row]], persona_ids: set[str]) -> set[str]:
    """Those of ``persona_ids`` with a row, as ``query`` reads them."""
    live: set[str] = set()
    for chunk in in_parts(sorted(persona_ids)):
        live |= {row.id for row in query(select(personas.c.id).where(personas.c.id.in_(chunk)))}
    return live


_ERASURES = (PersonaErased.NAME,)
"""Of the log, what tells which personas were erased: read alone, not the whole log."""

_CREATIONS = tuple(t.NAME for t in SCHEMA.event_types if issubclass(t, PersonaCreated))
"""The events that make a persona: the key each is sealed with starts a lineage."""


def _erased(log: Iterable[EventRecord]) -> set[str | None]:
    """The personas whose erasure ``log`` holds."""
    return {persona_of(r) for r in log if r.name == PersonaErased.NAME}


def pending_erasures(manager: HybridDatabaseManager) -> set[str]:
    """The personas whose erasure, made here, waits for the sync server (by this
    process or another: the store file is read anew)."""
    store = manager.store
    if store is None:
        return set()
    return {persona_of(r) or "" for r in store.pending() if r.name == PersonaErased.NAME}


def persona_rows(manager: HybridDatabaseManager, table: Any, persona_id: str) -> int:
    """How many rows of ``table`` belong to the persona."""
    query = select(func.count()).select_from(table).where(table.c.persona_id == persona_id)
    return int(manager.query(query)[0][0])


def _restricted(manager: HybridDatabaseManager, persona_id: str) -> int:
    rows = manager.query(select(memories.c.tags).where(memories.c.persona_id == persona_id))
    return sum(1 for r in rows if RESTRICTED in (r.tags or []))


def event_log(
    manager: HybridDatabaseManager, *, named: Collection[str] | None = None
) -> list[EventRecord]:
    """Every event of the log (only those with a name in ``named``, if given): the
    store's, else the SQL journal's."""
    store = manager.store
    if store is not None:
        return [e.record for e in store.events(named=named)]
    return manager.shards.journal(named=named)


def _retention(persona: Persona) -> str:
    """How long the persona's memories are kept, in words."""
    config = persona.memory
    parts = [
        "no limit"
        if config.retention_days is None
        else f"{config.retention_days} days, then {config.retention_action}"
    ]
    if config.restricted_retention_days is not None:
        parts.append(f"restricted memories {config.restricted_retention_days} days")
    if not persona.privacy.memory_retention:
        parts.append("nothing kept past its session")
    return "; ".join(parts)


def persona_of(record: EventRecord) -> str | None:
    """The persona a record names (``persona_id`` is never sealed), if any."""
    value = _ids(record).get("persona_id")
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
        args = _ids(record)
        if args.get("persona_id") != persona_id:
            continue
        for key, table in _ROW_IDS.items():
            if isinstance(value := args.get(key), str):
                found[table].add(value)
    return found


def _ids(record: EventRecord) -> dict[str, Any]:
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
        fields = _SENSITIVE.get(record.name)
        if fields is None:
            continue
        args = _ids(record)
        present = [args[f] for f in fields if f in args]
        if not present or args.get("persona_id") != persona_id:
            continue
        if all(is_envelope(value) for value in present):
            sealed += 1
        else:
            plain += 1
    return sealed, plain
