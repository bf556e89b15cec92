"""Live queries about personas: the list every view offers and the active one."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from pjai.hybrid import HybridDatabaseManager, spread
from pjai.schema.tables import personas
from pjai.store import LiveQuery, Row

__all__ = ["PersonaChoice", "active", "choices", "persona_choices"]

_c = personas.c


@dataclass(frozen=True, slots=True)
class PersonaChoice:
    """A persona as a picker shows it."""

    id: str
    name: str
    active: bool


def choices(manager: HybridDatabaseManager) -> LiveQuery:
    """The live personas by name, with whether each is active (read with
    :func:`persona_choices`)."""
    query = select(_c.id, _c.name, _c.is_active).where(_c.deleted_at.is_(None))
    return manager.live(spread(query, order_by=(_c.name, _c.id)))


def persona_choices(rows: list[Row]) -> list[PersonaChoice]:
    """The rows of :func:`choices` as values."""
    return [PersonaChoice(r.id, r.name, bool(r.is_active)) for r in rows]


def active(rows: list[Row]) -> PersonaChoice | None:
    """The active persona among the rows of :func:`choices`: the first active one by
    name, as :func:`pjai.app.resolve.active_persona_id` picks it."""
    return next((p for p in persona_choices(rows) if p.active), None)
