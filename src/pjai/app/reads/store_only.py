"""For the reads only the reactive store serves (its event log, its past states, its
live queries): they have no SQL counterpart, so with the store off they fail saying why."""

from __future__ import annotations

from pjai.errors import QueryError
from pjai.hybrid import HybridDatabaseManager
from pjai.store import Store

__all__ = ["store_of"]


def store_of(manager: HybridDatabaseManager, off: str) -> Store:
    """The manager's reactive store; raises :class:`~pjai.errors.QueryError` saying
    ``off`` (what cannot be read, and why) when the store is off."""
    store = manager.store
    if store is None:
        raise QueryError(off)
    return store
