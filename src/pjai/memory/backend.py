"""What the memory system needs from the data layer: commit, query, live queries.

:class:`pjai.store.Store`, :class:`pjai.hybrid.HybridDatabaseManager` and
:class:`pjai.memory.MemorySystem` provide it. The memory queries are written for SQLite:
with the store on they read its state; with it off they run on the SQL primary, which
works when that is the embedded SQLite. Full-text search needs the store and says so.
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
