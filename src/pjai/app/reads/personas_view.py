"""Live queries for the personas view: every persona (deleted ones too) with its memory
counts by tier, and one persona's full settings for its edit form."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, select

from pjai.hybrid import HybridDatabaseManager, spread
from pjai.schema.expressions import count_if
from pjai.schema.models import Persona, persona_from_row
from pjai.schema.tables import TIERS, memories, personas
from pjai.store import LiveQuery, Row

__all__ = [
    "PersonaEntry",
    "detail",
    "detail_key",
    "detail_persona",
    "persona_entries",
    "roster",
]

_p, _m = personas.c, memories.c

# Columns that change when a persona is activated or deactivated elsewhere: they do not
# show in the edit form, so a change of them alone must not rebuild it.
_NOT_IN_FORM = frozenset({"is_active", "updated_at"})


@dataclass(frozen=True, slots=True)
class PersonaEntry:
    """A persona as the list shows it."""

    id: str
    name: str
    description: str
    active: bool
    deleted: bool
    tiers: tuple[tuple[str, int], ...]
    """How many live memories it has in each tier, hottest first."""

    @property
    def memory_count(self) -> int:
        """Its live memories in all tiers."""
        return sum(count for _, count in self.tiers)


def roster(manager: HybridDatabaseManager) -> LiveQuery:
    """Every persona, deleted or not, by name, with its live memories counted per tier
    (read with :func:`persona_entries`)."""
    query = (
        select(
            _p.id,
            _p.name,
            _p.description,
            _p.is_active,
            _p.deleted_at,
            *(count_if(_m.tier == tier).label(tier) for tier in TIERS),
        )
        .select_from(
            personas.outerjoin(memories, and_(_m.persona_id == _p.id, _m.deleted_at.is_(None)))
        )
        .group_by(_p.id, _p.name, _p.description, _p.is_active, _p.deleted_at)
    )
    # Grouped by persona: each row is whole on the persona's shard.
    return manager.live(spread(query, order_by=(_p.name, _p.id)))


def persona_entries(rows: list[Row]) -> list[PersonaEntry]:
    """The rows of :func:`roster` as values."""
    return [
        PersonaEntry(
            id=r.id,
            name=r.name,
            description=r.description,
            active=bool(r.is_active),
            deleted=r.deleted_at is not None,
            tiers=tuple((tier, int(getattr(r, tier))) for tier in TIERS),
        )
        for r in rows
    ]


def detail(manager: HybridDatabaseManager, persona_id: str) -> LiveQuery:
    """One persona's row, deleted or not (read with :func:`detail_persona`)."""
    return manager.live(select(personas).where(_p.id == persona_id))


def detail_persona(rows: list[Row]) -> Persona | None:
    """The persona of :func:`detail`'s rows, or ``None`` if there is none."""
    return persona_from_row(rows[0]) if rows else None


def detail_key(rows: list[Row]) -> object:
    """What an edit form built from :func:`detail`'s rows shows: it changes when the
    persona's name, description, style, settings or deletion change, and not when it is
    merely activated or deactivated."""
    if not rows:
        return None
    row = rows[0]
    return tuple(
        (column.name, repr(getattr(row, column.name)))
        for column in personas.columns
        if column.name not in _NOT_IN_FORM
    )
