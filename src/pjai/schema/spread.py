"""Reads whose rows may be on several SQL shards: how their rows make one answer.

With several shards and the store off, a read that names no persona cannot go to one
shard. A select built with :func:`spread` says how the rows the shards return make its
answer: either its rows as they are (each row whole on one shard: rows of a table, or
grouped by persona), concatenated, ordered and cut to its LIMIT and OFFSET; or counts,
whose rows with the same key columns are one row with their counts and sums added up.
The SQL primary's reader (:mod:`pjai.hybrid.shardrows`) then runs it on every shard
and combines their rows; with the store on, or one shard, it runs as any select. It is
declared here, beside the tables, so that every layer that builds queries can say so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import ColumnElement, Label, UnaryExpression
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.selectable import Select

from pjai.errors import QueryError
from pjai.schema.types import AnySelect

__all__ = ["Spread", "spread", "spread_of"]

_OPTION = "pjai_spread"
_ADDED_UP = frozenset({"count", "sum", "total"})

_S = TypeVar("_S", bound=AnySelect)


@dataclass(frozen=True, slots=True)
class Spread:
    """How rows from several shards make a read's answer (see :func:`spread`)."""

    order: tuple[tuple[int, bool], ...]
    """Result columns to sort by, by place, each with whether it is descending."""
    limit: int | None
    offset: int
    keys: tuple[int, ...] | None
    """``None``: rows as they are; else the key columns of counted rows."""

    def on_shard(self, query: AnySelect) -> AnySelect:
        """``query`` as each shard runs it: every row the answer could take, unskipped."""
        if self.keys is not None or self.limit is None:
            return query.limit(None).offset(None)
        return query.limit(self.limit + self.offset).offset(None)


def _place(query: AnySelect, term: Any, what: str) -> int:
    for place, column in enumerate(query.selected_columns):
        if column is term or column.compare(term):
            return place
        if isinstance(column, Label) and column.element.compare(term):
            return place
    raise QueryError(f"{what} {term} is not a column the read selects: select it to use it")


def _ordering(query: AnySelect, term: Any) -> tuple[int, bool]:
    descending = False
    if isinstance(term, UnaryExpression):
        if term.modifier not in (operators.desc_op, operators.asc_op):
            raise QueryError(
                f"cannot order rows from several shards by {term}: order by columns the "
                "read selects, ascending or descending (no NULLS FIRST/LAST)"
            )
        descending = term.modifier is operators.desc_op
        term = term.element
    return _place(query, term, "the order"), descending


def _adds_up(column: Any) -> bool:
    """Whether ``column`` is a count or sum (or one with a default: ``coalesce(sum(x),
    0)``), which shards' values add up to."""
    if isinstance(column, Label):
        column = column.element
    if not isinstance(column, FunctionElement):
        return False
    name = column.name.lower()
    if name in _ADDED_UP:
        return True
    arguments = list(column.clauses)
    return name == "coalesce" and len(arguments) == 2 and _adds_up(arguments[0])


def spread(
    query: _S,
    *,
    order_by: Sequence[ColumnElement[Any]] = (),
    limit: int | None = None,
    offset: int = 0,
    counts_by: Sequence[ColumnElement[Any]] | None = None,
) -> _S:
    """``query`` ordered by ``order_by`` (in place of its own ORDER BY) and cut to
    ``limit`` and ``offset``, answered from every shard when it names no persona.

    Without ``counts_by`` its rows are taken as they are: each row must be whole on one
    shard (rows of a table, or groups that include a persona's id). With ``counts_by``
    its rows are counts, grouped by those columns (``()``: one row, no GROUP BY): rows
    of the shards with equal keys are one row whose other columns, each a count or sum,
    add up. Order and key columns must be columns ``query`` selects.
    """
    order = tuple(_ordering(query, term) for term in order_by)
    keys = None
    if counts_by is not None:
        keys = tuple(_place(query, term, "the key") for term in counts_by)
        for place, column in enumerate(query.selected_columns):
            if place not in keys and not _adds_up(column):
                raise QueryError(
                    f"column {column} of counts from several shards is neither a key nor "
                    "a count or sum, so the shards' values cannot be added up"
                )
    if (limit is not None and limit < 0) or offset < 0:
        raise QueryError(f"limit {limit} and offset {offset} must not be negative")
    how = Spread(order, limit, offset, keys)
    built = query.order_by(None).order_by(*order_by).limit(limit).offset(offset or None)
    return built.execution_options(**{_OPTION: how})


def spread_of(query: object) -> Spread | None:
    """How ``query``'s rows combine from several shards, if it was built by :func:`spread`."""
    if not isinstance(query, Select):
        return None
    how = query.get_execution_options().get(_OPTION)
    return how if isinstance(how, Spread) else None
