"""What the memory system needs from the data layer: commit, query, live queries.

:class:`pjai.store.Store`, :class:`pjai.hybrid.HybridDatabaseManager` and
:class:`pjai.memory.MemorySystem` provide it. The memory queries are SQLAlchemy selects
built from :mod:`pjai.schema.expressions`, so they run wherever the backend reads: the
store's state with the store on, the SQL primary (SQLite or PostgreSQL) with it off.
Full-text search reads the store's index, or PostgreSQL's text search; on an SQLite
SQL primary alone it asks for the store.
"""

from __future__ import annotations

from typing import Protocol

from pjai.schema.event import Event
from pjai.schema.records import EventRecord
from pjai.store.live import LiveQuery
from pjai.store.query import Params, Query, Row

__all__ = ["Backend"]


class Backend(Protocol):
    """Commit events and read PJai's tables."""

    def commit(self, *events: Event) -> list[EventRecord]:
        """Commit events, all or nothing."""
        ...

    def query(self, query: Query, params: Params = None) -> list[Row]:
        """Run a read query; rows have attribute access."""
        ...

    def live(self, query: Query, params: Params = None) -> LiveQuery:
        """A live query."""
        ...
