"""The data keys the log's erasures destroy, and destroying those still held.

An erasure destroys the lineages of the keys that sealed the erased persona's events
(:func:`erased_lineages`), never those of a persona given her id again by a device that
had not heard of the erasure (her creation started a lineage of its own). A device may
hold such keys after the erasure event: its keys' deletion has not come from the
erasing device (:func:`erased_keys_held`), or they lie beside a new persona of her id
(:func:`replaced_keys_held`); opening a store or a data directory, and syncing, destroy
them (:func:`destroy_erased_keys`, :func:`destroy_replaced_keys`), and an erasure whose
keys are held or whose rewrite is owed is unfinished (:func:`unfinished_erasures`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from functools import partial
from typing import Any

from sqlalchemy import select

from pjai.app.datadir import DataDir
from pjai.app.erasing import owe_rewrite, rewrites_owed
from pjai.app.eventlog import SENSITIVE_FIELDS, event_args, event_log, persona_of
from pjai.errors import SqlError
from pjai.hybrid import HybridDatabaseManager
from pjai.schema import SCHEMA, PersonaErased
from pjai.schema.expressions import in_parts
from pjai.schema.personas import creations
from pjai.schema.records import EventRecord
from pjai.schema.sealed import is_envelope
from pjai.schema.tables import personas
from pjai.security import STORE_SCOPE, FieldCodec, KeyRing
from pjai.security.fields import PROOF_FIELD
from pjai.store import Query, Row, Store

__all__ = [
    "applied_erasures",
    "destroy_erased_keys",
    "destroy_replaced_keys",
    "erased_keys",
    "erased_keys_held",
    "erased_lineages",
    "erased_personas",
    "replaced_keys_held",
    "take_erasures_before_proofs",
    "unfinished_erasures",
]


def unfinished_erasures(manager: HybridDatabaseManager) -> list[str]:
    """The erased personas whose erasure is not finished, by id (see
    :attr:`~pjai.app.rights.PrivacyReport.unfinished_erasures`). Of the log, only the
    erasure events are read, and only when the ring holds keys of a persona the
    directory has no row of
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
    return _erased_held(codec.keys, held, partial(_store_log, store))


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
        fields = SENSITIVE_FIELDS.get(record.name)
        if fields is None or record.name not in _CREATIONS:
            continue
        args = event_args(record)
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
        fields = SENSITIVE_FIELDS.get(record.name)
        if fields is None and record.name != PersonaErased.NAME:
            continue  # seals nothing: not read
        args = event_args(record)
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


def _store_log(store: Store, *, named: Collection[str]) -> list[EventRecord]:
    """The events of ``store``'s log named one of ``named``, without those of no
    device of the store (:meth:`~pjai.schema.event.Schema.proven`), as
    :func:`~pjai.app.eventlog.event_log` reads a directory's."""
    return store.schema.proven(e.record for e in store.events(named=named))


def _with_row(query: Callable[[Query], list[Row]], persona_ids: set[str]) -> set[str]:
    """Those of ``persona_ids`` with a row, as ``query`` reads them."""
    live: set[str] = set()
    for chunk in in_parts(sorted(persona_ids)):
        live |= {row.id for row in query(select(personas.c.id).where(personas.c.id.in_(chunk)))}
    return live


_ERASURES = (PersonaErased.NAME,)
"""Of the log, what tells which personas were erased: read alone, not the whole log."""


_CREATIONS = tuple(sorted(creations(SCHEMA.event_types)))
"""The events that make a persona: the key each is sealed with starts a lineage."""


def _erased(log: Iterable[EventRecord]) -> set[str | None]:
    """The personas whose erasure ``log`` holds."""
    return {persona_of(r) for r in log if r.name == PersonaErased.NAME}


def destroy_erased_keys(data_dir: DataDir, store: Store) -> list[str]:
    """Destroy the data keys of the personas the store, opened on its own, holds erased
    (:func:`erased_keys_held`: of the lineages their erasures destroy, not those of a
    persona given an erased one's id again), so that nothing read from it (a rebuild)
    opens their sealed events; each marked first as owing the rewrite of the files,
    which the next opening of the directory does
    (:func:`~pjai.app.privacy.finish_erasures`: SQL too, which a store opened alone
    does not reach). The personas whose keys went."""
    codec = store.schema.codec
    if not isinstance(codec, FieldCodec):
        return []
    erased = erased_keys_held(store)
    for persona_id, lineages in erased.items():
        owe_rewrite(data_dir.path, persona_id)
        codec.keys.erase(persona_id, lineages)
    replaced = destroy_replaced_keys(codec.keys, partial(_store_log, store), store.query)
    return sorted(set(erased) | set(replaced))


def destroy_replaced_keys(
    ring: KeyRing, read: Callable[..., list[EventRecord]], query: Callable[[Query], list[Row]]
) -> list[str]:
    """Destroy the keys an erased persona left in ``ring`` beside a persona given her id
    again, whose erasure the log holds (:func:`replaced_keys_held`, with ``read`` and
    ``query`` as it takes them): at once, not when their deletion comes from the device
    that erased her, which may be never. The personas whose keys went; the files are
    the caller's to compact (the erased persona's rows went as her erasure was
    applied)."""
    replaced = replaced_keys_held(ring, read, query)
    for persona_id, lineages in replaced.items():
        ring.erase(persona_id, lineages)
    return sorted(replaced)


def applied_erasures(manager: HybridDatabaseManager) -> list[EventRecord]:
    """The erasure events of the directory: those its store's log applied, and those
    of SQL's journal (which keeps no outcome; it may hold an erasure the store has not
    taken in yet), unless SQL is away and there is a store (its log alone, then: the
    ring is not left to take any erasure while the store syncs)."""
    found = {}
    if (store := manager.store) is not None:
        found = {e.record.id: e.record for e in store.events(named=_ERASURES) if e.error is None}
    try:
        journal = manager.shards.journal(named=_ERASURES)
    except SqlError:
        if store is None:
            raise
        journal = []
    for record in journal:
        found.setdefault(record.id, record)
    return list(found.values())


def take_erasures_before_proofs(codec: object, applied: Callable[[], list[EventRecord]]) -> None:
    """Once per key ring (``codec``'s, where it seals): take the erasures with no proof
    that the directory's log applied before this device checked proofs (``applied()``,
    read only then) as made by a device of the store, so that a replay of the log keeps
    them (:meth:`~pjai.security.KeyRing.take_unproven`: an erasure made before the
    directory was encrypted, or by a PJai from before proofs). Any other erasure with no
    proof is refused from then on (:mod:`pjai.security.fields`)."""
    if not isinstance(codec, FieldCodec) or codec.keys.unproven_taken():
        return
    unproven = [r.id for r in applied() if PROOF_FIELD not in event_args(r)]
    codec.keys.take_unproven(unproven)
