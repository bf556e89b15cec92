"""The right to erasure (GDPR art. 17, CCPA deletion) on an append-only log.

:func:`erase_persona` commits one ``v1.PersonaErased`` event (it names the persona and
nothing else), which deletes every row of the persona from the store's state and the
SQL primary; destroys the persona's data keys, so that its sealed events in every log
open nowhere (crypto-shredding); drops its memory vectors; and rewrites the store, the
SQL primary and the vector file so that no deleted page keeps its text. It returns an
:class:`ErasureProof` that holds no personal data.

What key destruction cannot reach is said, not hidden: events the log holds in
plaintext (written before ``pjai security init``, or in a directory that is not
encrypted) stay readable there; the proof counts them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import func, select

from pjai.app.datadir import DataDir
from pjai.errors import NotFoundError
from pjai.hybrid import HybridDatabaseManager
from pjai.memory.embeddings import forget_persona
from pjai.schema import SCHEMA, PersonaErased
from pjai.schema.personas import ERASED_TABLES
from pjai.schema.records import EventRecord
from pjai.schema.sealed import ENVELOPE_KEY
from pjai.schema.tables import personas
from pjai.security import FieldCodec

__all__ = ["ErasureProof", "erase_persona"]

_SENSITIVE = {t.NAME: t.SENSITIVE for t in SCHEMA.event_types if t.SENSITIVE}
_MARK = f'"{ENVELOPE_KEY}"'.encode()


@dataclass(frozen=True, slots=True)
class ErasureProof:
    """What an erasure did, with no personal data: which persona (by id), the event
    that records it, when, on which device, the rows deleted per table, the
    fingerprints of the data keys destroyed, the persona's events the log keeps
    (sealed, and now unreadable; or in plaintext, still readable), and the files
    rewritten."""

    persona_id: str
    event_id: str | None
    """The ``v1.PersonaErased`` event (``None`` when finishing an erasure made before)."""
    erased_at: datetime
    device: str
    """This installation's client id."""
    rows: dict[str, int]
    keys_destroyed: list[str]
    sealed_events: int
    plaintext_events: int
    vectors: int
    rewritten: list[str] = field(default_factory=list)


def erase_persona(
    data_dir: DataDir, manager: HybridDatabaseManager, persona_id: str
) -> ErasureProof:
    """Erase ``persona_id`` for good (see the module). A persona that is gone already
    but whose erasure did not finish (its keys or files) is finished;
    :class:`~pjai.errors.NotFoundError` for one that never was here."""
    log = list(_history(manager))
    exists = bool(manager.query(select(personas.c.id).where(personas.c.id == persona_id)))
    erased_before = any(r.name == PersonaErased.NAME and _persona_of(r) == persona_id for r in log)
    if not exists and not erased_before:
        raise NotFoundError(f"no persona {persona_id!r} to erase")
    rows = _rows(manager, persona_id) if exists else {}
    sealed, plain = _events(log, persona_id)
    event_id = None
    if exists:
        (record,) = manager.commit(PersonaErased(persona_id=persona_id))
        event_id = record.id
    codec = manager.schema.codec
    destroyed = codec.keys.erase(persona_id) if isinstance(codec, FieldCodec) else []
    vectors = forget_persona(data_dir.vectors_path, persona_id)
    rewritten = []
    if manager.store is not None:
        manager.store.compact()
        rewritten.append(data_dir.store_path.name)
    rewritten += manager.shards.compact()
    if vectors:
        rewritten.append(data_dir.vectors_path.name)
    return ErasureProof(
        persona_id=persona_id,
        event_id=event_id,
        erased_at=datetime.now(UTC),
        device=manager.identity.client_id,
        rows=rows,
        keys_destroyed=[k.fingerprint for k in destroyed],
        sealed_events=sealed,
        plaintext_events=plain,
        vectors=vectors,
        rewritten=rewritten,
    )


def _history(manager: HybridDatabaseManager) -> list[EventRecord]:
    store = manager.store
    if store is not None:
        return [e.record for e in store.events()]
    return manager.shards.journal()


def _persona_of(record: EventRecord) -> str | None:
    try:
        args: Any = msgspec.json.decode(bytes(record.args))
    except msgspec.DecodeError:
        return None
    value = args.get("persona_id") if isinstance(args, dict) else None
    return value if isinstance(value, str) else None


def _rows(manager: HybridDatabaseManager, persona_id: str) -> dict[str, int]:
    tables = {t.name: t for t in manager.schema.metadata.sorted_tables}
    counted = {}
    for name in ERASED_TABLES:
        table = tables[name]
        query = select(func.count()).select_from(table).where(table.c.persona_id == persona_id)
        counted[name] = int(manager.query(query)[0][0])
    counted["personas"] = 1
    return counted


def _events(log: list[EventRecord], persona_id: str) -> tuple[int, int]:
    """The persona's events with personal content in the log: sealed, and plain."""
    sealed = plain = 0
    for record in log:
        if record.name not in _SENSITIVE or _persona_of(record) != persona_id:
            continue
        if _MARK in bytes(record.args):
            sealed += 1
        else:
            plain += 1
    return sealed, plain
