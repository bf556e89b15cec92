"""Reads and live queries on the SQL primary, for when the reactive store is switched off.

Live queries re-run after each SQL commit that wrote a table they read (the tables of a
``select`` come from SQLAlchemy; SQL text is taken to read every table), and deliver
only results that changed, like the store's live queries.

With several shards a read goes where its rows are. A persona's rows all live on its
shard, so a ``select`` whose WHERE holds ``persona_id = X`` (or ``personas.id = X``) for
every row (:func:`persona_named`) runs there, and one that reads no table (the
dialect's name) on the first shard. Any other read runs on every shard, and is answered
when at most one shard has rows for it: a lookup by id, the active persona, one
persona's links. A select built with :func:`pjai.hybrid.spread` says how the
rows of several shards make its answer: it runs on every shard and their rows are
combined. Any other read whose rows are on several shards (every persona's memories, a
count over everyone), and one that skips rows (OFFSET) without naming a persona, is
refused, as no shard holds its answer alone; the repositories and the store answer
those. A live query must name its persona or be built with ``spread``, else it is
refused: the rows of any other could come to be spread over shards, and its result
would stop following them.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.sql import operators, visitors
from sqlalchemy.sql.elements import (
    BinaryExpression,
    BindParameter,
    BooleanClauseList,
    ColumnClause,
    Grouping,
)
from sqlalchemy.sql.selectable import Select

from pjai.errors import QueryError, SqlError, SqlUnavailableError
from pjai.hybrid.shardrows import combine, spread_of
from pjai.sql.shards import Shard, ShardSet
from pjai.store.changes import Changes
from pjai.store.live import LiveQueries, LiveQuery
from pjai.store.query import Query, RowFilters

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


def _conjuncts(clause: Any) -> Iterator[Any]:
    """The terms every row must meet: ``clause`` through its top-level ANDs."""
    while isinstance(clause, Grouping):
        clause = clause.element
    if isinstance(clause, BooleanClauseList) and clause.operator is operators.and_:
        for term in clause.clauses:
            yield from _conjuncts(term)
    else:
        yield clause


def _persona_equal(term: Any, params: Mapping[str, Any]) -> tuple[str, Any] | None:
    """``(parameter key, value)`` when ``term`` is ``persona_id = :parameter``."""
    if not isinstance(term, BinaryExpression) or term.operator is not operators.eq:
        return None
    for side, other in ((term.left, term.right), (term.right, term.left)):
        if _names_persona(side) and isinstance(other, BindParameter):
            return other.key, params.get(other.key, other.value)
    return None


def _any_or_persona(term: Any, params: Mapping[str, Any]) -> tuple[str, Any] | None:
    """``(key, value)`` when ``term`` is ``:key IS NULL OR persona_id = :key`` (every
    persona, or the one given)."""
    while isinstance(term, Grouping):
        term = term.element
    if not isinstance(term, BooleanClauseList) or term.operator is not operators.or_:
        return None
    if len(term.clauses) != 2:
        return None
    unset, equal = term.clauses
    found = _persona_equal(equal, params)
    if (
        found is None
        or not isinstance(unset, BinaryExpression)
        or unset.operator is not operators.is_
        or not isinstance(unset.left, BindParameter)
        or unset.left.key != found[0]
    ):
        return None
    return found


def persona_named(query: Query, params: Mapping[str, Any]) -> str | None:
    """The one persona whose rows ``query`` reads, when its WHERE says so of every row:
    ``persona_id = X`` (or ``personas.id = X``) as a term of its top-level AND, or
    ``X IS NULL OR persona_id = X`` with X given. ``None`` otherwise, and for SQL text."""
    if not isinstance(query, Select) or query.whereclause is None:
        return None
    named = set()
    for term in _conjuncts(query.whereclause):
        found = _persona_equal(term, params) or _any_or_persona(term, params)
        if found is not None:
            named.add(found[1])
    if len(named) == 1 and isinstance(value := next(iter(named)), str):
        return value
    return None


def _offset(statement: Any, query: Query) -> bool:
    """Whether the read skips rows (OFFSET): an empty answer from a shard then does not
    mean it holds none."""
    sql = query if isinstance(query, str) else str(statement.compile())
    return re.search(r"\boffset\b", sql, re.IGNORECASE) is not None


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
        how = spread_of(query)
        if how is not None:
            on_shard = how.on_shard(statement)
            found = [self._run(shard, on_shard, given) for shard in self._shards]
            names = list(statement.selected_columns.keys())
            nulls_small = self._shards.shards[0].engine.dialect.name != "postgresql"
            return combine(how, names, found, nulls_small=nulls_small)
        if _offset(statement, query):
            raise _SpreadError(
                "a read that skips rows (OFFSET) and names no persona cannot be answered "
                "from several SQL shards with the store off: name a persona (or switch "
                "the store on)"
            )
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
        """A live query that re-runs after SQL commits to the tables it reads. With
        several shards it must name one persona (see :func:`persona_named`) or be built
        with :func:`pjai.hybrid.spread` (it then re-runs on every shard): the
        rows of any other could come to be spread over shards, and its result would stop
        following them."""
        if not self._routed(query, params):
            raise QueryError(
                "a live query that names no persona cannot follow several SQL shards with "
                "the store off: name a persona, build it with pjai.hybrid.spread "
                "(saying how the shards' rows combine), or switch the store on"
            )
        return LiveQuery(self, SqlQuery(query, params, tables_of(query)))

    def _routed(self, query: Query, params: Mapping[str, Any] | Sequence[Any] | None) -> bool:
        given = dict(params) if isinstance(params, Mapping) else {}
        return (
            len(self._shards) == 1
            or spread_of(query) is not None
            or persona_named(query, given) is not None
        )

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
        if not self._routed(prepared.query, prepared.params):
            # One made on the store, moved here as the store went off: it keeps its last
            # result (and its subscribers) until the store is back on.
            return False
        rows = self.query(prepared.query, prepared.params)
        return live.set_result(rows, prepared.tables or self._all_tables)

    def register_live(self, live: LiveQuery) -> None:
        """Re-run ``live`` after SQL commits to the tables it reads."""
        self._live.add(live)

    def unregister_live(self, live: LiveQuery) -> None:
        """Stop re-running ``live``."""
        self._live.discard(live)
