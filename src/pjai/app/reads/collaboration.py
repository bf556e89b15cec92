"""What the collaboration view reads: the changes other instances made to the store."""

from __future__ import annotations

from pjai.errors import QueryError
from pjai.hybrid import HybridDatabaseManager
from pjai.store import LiveQuery
from pjai.store.log import LOG_TABLE

__all__ = ["others_changes"]


def others_changes(manager: HybridDatabaseManager, *, limit: int = 20) -> LiveQuery:
    """The newest ``limit`` events of the store's log made by other instances (another
    client id than this installation's), newest first: ``global_seq, event_id, name,
    client_id, at``. Raises :class:`~pjai.errors.QueryError` with the store off."""
    store = manager.store
    if store is None:
        raise QueryError("changes of other instances are read from the store; the store is off")
    query = (
        f"SELECT global_seq, event_id, name, client_id, at FROM {LOG_TABLE} "
        "WHERE client_id != :me ORDER BY global_seq DESC LIMIT :limit"
    )
    return store.live(query, {"me": manager.identity.client_id, "limit": limit})
