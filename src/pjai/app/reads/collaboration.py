"""What the collaboration view reads: the changes other instances made to the store."""

from __future__ import annotations

from pjai.app.reads.store_only import store_of
from pjai.hybrid import HybridDatabaseManager
from pjai.store import LiveQuery
from pjai.store.log import LOG_TABLE

__all__ = ["STORE_OFF", "others_changes"]

STORE_OFF = "changes of other instances are read from the store; the store is off"


def others_changes(manager: HybridDatabaseManager, *, limit: int = 20) -> LiveQuery:
    """The newest ``limit`` events of the store's log made by other instances (another
    client id than this installation's), newest first: ``global_seq, event_id, name,
    client_id, at``. Raises :class:`~pjai.errors.QueryError` with the store off."""
    query = (
        f"SELECT global_seq, event_id, name, client_id, at FROM {LOG_TABLE} "
        "WHERE client_id != :me ORDER BY global_seq DESC LIMIT :limit"
    )
    return store_of(manager, STORE_OFF).live(
        query, {"me": manager.identity.client_id, "limit": limit}
    )
