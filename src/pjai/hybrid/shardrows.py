"""Reads whose rows are on several SQL shards, and how their rows combine.

With several shards and the store off, a read that names no persona
(:func:`~pjai.hybrid.sqllive.persona_named`) cannot go to one shard. One built with
:func:`spread` (:mod:`pjai.schema.spread`) says how the rows the shards return make its
answer, and :class:`~pjai.hybrid.sqllive.SqlLiveHost` then runs it on every shard (as a
live query too, re-run on every shard after each commit) and :func:`combine` makes the
answer of their rows. With the store on, or one shard, it runs as any select.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Sequence
from functools import partial
from typing import Any

from pjai.schema.spread import Spread, spread, spread_of

__all__ = ["Spread", "combine", "spread", "spread_of"]


def _added(values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def combine(
    how: Spread, names: Sequence[str], found: Sequence[list[Any]], *, nulls_small: bool
) -> list[Any]:
    """The answer from each shard's rows: merged as ``how`` says, ordered (NULL sorts
    below every value with ``nulls_small``, as on SQLite, else above it, as on
    PostgreSQL), then cut to its LIMIT and OFFSET."""
    rows: list[Any] = [row for shard_rows in found for row in shard_rows]
    if how.keys is not None:
        keys = how.keys
        groups: dict[tuple[Any, ...], list[list[Any]]] = {}
        for row in rows:
            groups.setdefault(tuple(row[k] for k in keys), []).append(list(row))
        made = namedtuple("Row", names, rename=True)  # type: ignore[misc]
        rows = [
            made(
                *(
                    group[0][i] if i in keys else _added([r[i] for r in group])
                    for i in range(len(names))
                )
            )
            for group in groups.values()
        ]
    for place, descending in reversed(how.order):
        rows.sort(key=partial(_sort_key, place, nulls_small), reverse=descending)
    end = None if how.limit is None else how.offset + how.limit
    return rows[how.offset : end]


def _sort_key(place: int, nulls_small: bool, row: Any) -> tuple[Any, ...]:
    value = row[place]
    if value is None:
        return (0,) if nulls_small else (1,)
    return (1, value) if nulls_small else (0, value)
