"""Finding what a command names, or saying that it does not exist."""

from __future__ import annotations

from sqlalchemy import select

from pjai.errors import NotFoundError
from pjai.memory.backend import Backend
from pjai.schema.tables import personas

__all__ = ["require_persona"]


def require_persona(backend: Backend, persona_id: str) -> None:
    """Nothing if ``persona_id`` is a live persona; else :class:`~pjai.errors.NotFoundError`.

    A deleted persona counts as missing, as ``pjai persona show`` has it.
    """
    p = personas.c
    rows = backend.query(select(p.id).where(p.id == persona_id, p.deleted_at.is_(None)))
    if not rows:
        raise NotFoundError(f"no persona {persona_id!r} (pjai persona list shows them)")
