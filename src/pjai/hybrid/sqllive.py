"""Live queries on the SQL primary, for when the reactive store is switched off.

They re-run after each SQL commit that wrote a table they read (the tables of a
``select`` come from SQLAlchemy; SQL text is taken to read every table), and deliver
only results that changed, like the store's live queries.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.sql import visitors

from pjai.errors import QueryError, SqlError, SqlUnavailableError
from pjai.sql.shards import Shard
from pjai.store.changes import Changes
from pjai.store.live import LiveQueries, LiveQuery
from pjai.store.query import Query, RowFilters

__all__ = ["ParkedHost", "SqlLiveHost", "SqlQuery", "tables_of"]


@dataclass(frozen=True, slots=True)
class SqlQuery:
    """A query as the SQL primary runs it."""

    query: Query
    params: Mapping[str, Any] | Sequence[Any] | None
    tables: frozenset[str] | None
    filters: RowFilters = field(default_factory=dict)

    @property
    def sql(self) -> str:
        """The query's SQL text."""
        return self.query if isinstance(self.query, str) else str(self.query)


def tables_of(query: Query) -> frozenset[str] | None:
    """The tables a ``select`` reads, or ``None`` (every table) for SQL text."""
    if isinstance(query, str):
        return None
    return frozenset(e.name for e in visitors.iterate(query) if isinstance(e, Table))


class SqlLiveHost:
    """Runs live queries and ad-hoc reads on one SQL primary."""

    def __init__(self, shard: Shard, all_tables: frozenset[str]) -> None:
        self._shard = shard
        self._all_tables = all_tables
        self._lock = threading.RLock()
        self._live = LiveQueries()

    def query(
        self, query: Query, params: Mapping[str, Any] | Sequence[Any] | None = None
    ) -> list[Any]:
        """Run a read query on the SQL primary; rows have attribute access."""
        statement: Any
        if isinstance(query, str):
            if params is not None and not isinstance(params, Mapping):
                raise QueryError("SQL text on the SQL primary takes named parameters (:name)")
            statement = text(query)
        else:
            statement = query
        try:
            with self._shard.writer.connection("running query on SQL") as conn:
                return list(conn.execute(statement, dict(params or {})).all())
        except SqlUnavailableError:
            raise
        except SqlError as exc:
            raise QueryError(str(exc)) from exc.__cause__

    def live(
        self, query: Query, params: Mapping[str, Any] | Sequence[Any] | None = None
    ) -> LiveQuery:
        """A live query that re-runs after SQL commits to the tables it reads."""
        return LiveQuery(self, SqlQuery(query, params, tables_of(query)))

    def changed(self, tables: set[str]) -> None:
        """Re-run the live queries reading ``tables`` and deliver new results."""
        with self._lock:
            affected = [
                live for live in self._live.affected(Changes(tables=tables)) if self.run_live(live)
            ]
        for live in affected:
            live.deliver()

    def close(self) -> None:
        """Stop every live query."""
        with self._lock:
            self._live.close_all()

    @property
    def lock(self) -> threading.RLock:
        """Held while live queries register or run."""
        return self._lock

    def run_live(self, live: LiveQuery) -> bool:
        """Run ``live``'s query on SQL; whether its result changed."""
        prepared = live.prepared
        assert isinstance(prepared, SqlQuery)
        rows = self.query(prepared.query, prepared.params)
        return live.set_result(rows, prepared.tables or self._all_tables)

    def register_live(self, live: LiveQuery) -> None:
        """Re-run ``live`` after SQL commits to the tables it reads."""
        self._live.add(live)

    def unregister_live(self, live: LiveQuery) -> None:
        """Stop re-running ``live``."""
        self._live.discard(live)


class ParkedHost:
    """Holds live queries that cannot run anywhere for now; they keep their subscribers."""

    def __init__(self) -> None:
        self._lock = threading.RLock()

    @property
    def lock(self) -> threading.RLock:
        """Held while live queries register (nothing runs here)."""
        return self._lock

    def run_live(self, live: LiveQuery) -> bool:
        """Nothing runs while parked: the result stays as it was."""
        return False

    def register_live(self, live: LiveQuery) -> None:
        """Nothing to do: parked queries hear of no commits."""

    def unregister_live(self, live: LiveQuery) -> None:
        """Nothing to do."""
