"""What the memory system needs from the data layer: commit, query, live queries.

Both :class:`pjai.store.Store` and :class:`pjai.hybrid.HybridDatabaseManager` provide it.
Full-text search, the timeline and the graph queries read the reactive store's SQLite
state; with the store switched off they say so.
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
