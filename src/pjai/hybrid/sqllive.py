"""Reads and live queries on the SQL primary, for when the reactive store is switched off.

Live queries re-run after each SQL commit that wrote a table they read (the tables of a
``select`` come from SQLAlchemy; SQL text is taken to read every table), and deliver
only results that changed, like the store's live queries.

With several shards a read goes where its rows are. A persona's rows all live on its
shard, so a read that names one persona (``persona_id = X`` or ``personas.id = X`` in a
``select``; a ``persona`` or ``persona_id`` parameter of SQL text) runs there, and one
that reads no table (the dialect's name) on the first shard. Any other
read runs on every shard, and is answered when at most one shard has rows for it: a
lookup by id, the active persona, one persona's links. A read whose rows are on several
shards (every persona's memories, a count over everyone) is refused, as no shard holds
its answer alone; the repositories and the store answer those.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.sql import operators, visitors
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, ColumnClause

from pjai.errors import QueryError, SqlError, SqlUnavailableError
from pjai.sql.shards import Shard, ShardSet
from pjai.store.changes import Changes
from pjai.store.live import LiveQueries, LiveQuery
from pjai.store.query import Query, RowFilters

log = logging.getLogger(__name__)

__all__ = ["SqlLiveHost", "SqlQuery", "persona_named", "tables_of"]


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


class _SpreadError(QueryError):
    """A read whose rows are on several shards."""


def _names_persona(element: object) -> bool:
    return isinstance(element, ColumnClause) and (
        element.name == "persona_id"
        or (element.name == "id" and getattr(element.table, "name", None) == "personas")
    )


def persona_named(query: Query, params: Mapping[str, Any]) -> str | None:
    """The one persona whose rows ``query`` reads, when it says so; else ``None``."""
    if isinstance(query, str):
        named = {params[key] for key in ("persona", "persona_id") if key in params}
    else:
        named = set()
        for element in visitors.iterate(query):
            if not isinstance(element, BinaryExpression) or element.operator is not operators.eq:
                continue
            for side, other in ((element.left, element.right), (element.right, element.left)):
                if _names_persona(side) and isinstance(other, BindParameter):
                    named.add(params.get(other.key, other.value))
    if len(named) == 1 and isinstance(value := next(iter(named)), str):
        return value
    return None


class SqlLiveHost:
    """Runs live queries and ad-hoc reads on the SQL primary's shards."""

    def __init__(self, shards: ShardSet, all_tables: frozenset[str]) -> None:
        self._shards = shards
        self._all_tables = all_tables
        self._lock = threading.RLock()
        self._live = LiveQueries()

    def query(
        self, query: Query, params: Mapping[str, Any] | Sequence[Any] | None = None
    ) -> list[Any]:
        """Run a read query where its rows are (see the module doc); rows have
        attribute access."""
        statement: Any
        if isinstance(query, str):
            if params is not None and not isinstance(params, Mapping):
                raise QueryError("SQL text on the SQL primary takes named parameters (:name)")
            statement = text(query)
        else:
            statement = query
        given = dict(params or {})
        if len(self._shards) == 1 or tables_of(query) == frozenset():  # no rows read
            return self._run(self._shards.shards[0], statement, given)
        persona = persona_named(query, given)
        if persona is not None:
            return self._run(self._shards.for_persona(persona), statement, given)
        found = [rows for shard in self._shards if (rows := self._run(shard, statement, given))]
        if len(found) > 1:
            raise _SpreadError(
                f"this read has rows on {len(found)} SQL shards and no shard holds its "
                "answer alone: with several shards and the store off, reads of one "
                "persona or one row are answered (or switch the store on)"
            )
        return found[0] if found else []

    @staticmethod
    def _run(shard: Shard, statement: Any, params: dict[str, Any]) -> list[Any]:
        try:
            with shard.writer.connection("running query on SQL") as conn:
                return list(conn.execute(statement, params).all())
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
        try:
            rows = self.query(prepared.query, prepared.params)
        except _SpreadError:
            # Its rows are now on several shards: it keeps its last result (and its
            # subscribers) until the store is back on or its rows are on one shard.
            if live.runs == 0:
                raise
            log.warning("a live query's rows are on several SQL shards; it waits: %s", live.sql)
            return False
        return live.set_result(rows, prepared.tables or self._all_tables)

    def register_live(self, live: LiveQuery) -> None:
        """Re-run ``live`` after SQL commits to the tables it reads."""
        self._live.add(live)

    def unregister_live(self, live: LiveQuery) -> None:
        """Stop re-running ``live``."""
        self._live.discard(live)
