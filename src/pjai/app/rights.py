"""Consents and the privacy report: what a data subject agreed to, and what is held.

Consents are events (``v1.ConsentRecorded``): the newest per persona and purpose is in
force (the ``consents`` table), every one stays in the audit trail. The report
summarises, per persona, the data held, its privacy switches, retention, consents,
keys and what the event log holds sealed or in plaintext, and the erasures made here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import func, select

from pjai.app.erasedkeys import unfinished_erasures
from pjai.app.erasing import copies_left
from pjai.app.eventlog import content_events, event_log, persona_of
from pjai.hybrid import HybridDatabaseManager
from pjai.memory.classify import RESTRICTED
from pjai.schema import ConsentRecorded, PersonaErased
from pjai.schema.models import Persona, persona_from_row
from pjai.schema.tables import (
    bookmarks,
    consents,
    conversation_messages,
    conversations,
    memories,
    personas,
)
from pjai.security import FieldCodec

__all__ = [
    "Consent",
    "PersonaPrivacy",
    "PrivacyReport",
    "consents_of",
    "persona_rows",
    "privacy_report",
    "record_consent",
]


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


def persona_rows(manager: HybridDatabaseManager, table: Any, persona_id: str) -> int:
    """How many rows of ``table`` belong to the persona."""
    query = select(func.count()).select_from(table).where(table.c.persona_id == persona_id)
    return int(manager.query(query)[0][0])


def _restricted(manager: HybridDatabaseManager, persona_id: str) -> int:
    rows = manager.query(select(memories.c.tags).where(memories.c.persona_id == persona_id))
    return sum(1 for r in rows if RESTRICTED in (r.tags or []))


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
