"""Refusals of a change made by hand that the optimizer would undo at once.

Restoring a memory or moving it to a tier commits an event, and the optimizer run of
that commit (:mod:`pjai.memory.optimizer`) could delete, archive or trade it straight
back: a privacy rule or the persona's retention applies to it, or the persona is full.
The memory system asks here first, and a change the run would undo is refused with the
setting to change.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from pjai.errors import ConfigError, PrivacyError
from pjai.memory import limits, optimizer
from pjai.memory.backend import Backend
from pjai.memory.classify import RESTRICTED
from pjai.schema.fields import Tier
from pjai.schema.models import Memory, Persona
from pjai.schema.tables import personas
from pjai.schema.types import utc_now

__all__ = ["check_move_stays", "check_restore_stays"]


def check_restore_stays(backend: Backend, memory: Memory) -> None:
    """Refuse a restore that the optimizer run of its own commit would undo or pay for:
    a privacy rule or the persona's retention would delete the memory again at once
    (:class:`~pjai.errors.PrivacyError`, :class:`~pjai.errors.ConfigError`), or the
    persona holds ``max_memories`` and the run would delete a memory for space
    (:class:`~pjai.errors.ConfigError`)."""
    persona = optimizer.load_persona(backend, memory.persona_id)
    if persona is None:
        return
    keep, now = persona.privacy.memory_retention, utc_now()
    start = None if keep else optimizer.session_start(backend, persona.id, now)
    restricted = RESTRICTED in memory.tags
    rule = optimizer.privacy_rule(persona, memory.created_at, restricted, now, start)
    whose = f"{persona.name} ({persona.id})"
    if rule == "session":
        assert start is not None
        raise PrivacyError(
            f"memory {memory.id} was recorded {memory.created_at:%Y-%m-%d %H:%M} UTC, "
            f"before the conversation of {start:%Y-%m-%d %H:%M} UTC began the current "
            f"session of {whose}, whose privacy.memory_retention is off: the memories "
            "of earlier sessions are deleted, so restoring it would be undone at once. "
            "Turn memory retention on (pjai persona update PERSONA --set "
            "privacy.memory_retention=true) to keep it"
        )
    if rule == "restricted":
        days = persona.memory.restricted_retention_days
        raise PrivacyError(
            f"memory {memory.id} holds restricted data and was recorded "
            f"{memory.created_at:%Y-%m-%d}, longer ago than the "
            f"memory.restricted_retention_days of {whose} ({days}): restoring it would "
            "be undone at once. Raise that setting (pjai persona update PERSONA --set "
            "memory.restricted_retention_days=N) to keep it"
        )
    _check_retention(backend, memory, "restoring it", archived=True)
    _check_restore_room(backend, memory, persona)


def check_move_stays(backend: Backend, memory: Memory, tier: Tier) -> None:
    """Refuse a move that the optimizer run of its own commit would undo: a memory
    past its persona's retention is archived (or deleted) again at once."""
    _check_retention(backend, memory, "the move", archived=tier == "cold")


def _check_restore_room(backend: Backend, memory: Memory, persona: Persona) -> None:
    """Refuse a restore that the run of its own commit would pay for by deleting a
    memory for space: a restore brings a memory back, it does not trade one for
    another (nor undo itself)."""
    config = persona.memory
    rows = backend.query(limits.query(persona.id))
    if not config.auto_optimize or not rows or rows[0].total < config.max_memories:
        return
    expendable = memory.importance < config.importance_threshold and not memory.pinned
    if not rows[0].expendable and not expendable:
        return  # nothing the run may delete: the persona stays over, as it is now
    raise ConfigError(
        f"memory {memory.id} cannot be restored: {persona.name} ({persona.id}) holds "
        f"{rows[0].total} live memories and its memory.max_memories is "
        f"{config.max_memories}, so the optimizer would delete the lowest-scored "
        f"memory of importance below {config.importance_threshold} (this one or "
        "another) to make room. Raise memory.max_memories (pjai persona update "
        "PERSONA --set memory.max_memories=N) or delete a memory first"
    )


def _check_retention(backend: Backend, memory: Memory, change: str, *, archived: bool) -> None:
    """Refuse ``change`` of a memory past its auto-optimizing persona's retention,
    which the run of its own commit would undo: always when retention deletes,
    unless the memory may end ``archived`` when it archives."""
    p = personas.c
    rows = backend.query(
        select(p.memory_auto_optimize, p.memory_retention_days, p.memory_retention_action).where(
            p.id == memory.persona_id
        )
    )
    if not rows:
        return
    auto, days, action = rows[0]
    if not auto or days is None or memory.created_at >= utc_now() - timedelta(days=days):
        return
    if action == "archive" and archived:
        return  # where retention puts it anyway
    done = "archives" if action == "archive" else "deletes"
    raise ConfigError(
        f"memory {memory.id} was recorded {memory.created_at:%Y-%m-%d}, longer ago than "
        f"its persona's retention of {days} days, which {done} it: {change} would be "
        "undone at once. Raise memory.retention_days (pjai persona update PERSONA "
        "--set memory.retention_days=N) to keep it"
    )
