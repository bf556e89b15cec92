"""Conflicts: which confirmed event made a pending event fail after a rebase.

A pending event that no longer applies on top of the upstream history lost a conflict:
an upstream event wrote the row it needed (deleted the memory it updates, took the id
it creates). The audit record names that event next to the reason, so a rejection
says what won and not only what failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pjai.errors import PjaiError
from pjai.schema.event import Schema
from pjai.schema.ops import Delete, Insert, Op, Update
from pjai.schema.records import EventRecord

__all__ = ["explain", "winner"]


@dataclass(frozen=True, slots=True)
class _Need:
    """Rows a failed event needed: those matching ``match``, in the state ``columns`` had."""

    table: str
    match: Mapping[str, object]
    columns: frozenset[str] | None
    """The columns its check read; ``None`` for an insert, which needed the key free."""


def _ops(schema: Schema, record: EventRecord) -> Sequence[Op]:
    try:
        return schema.materialize(record).ops
    except PjaiError:
        return ()  # unknown to this version or invalid: it wrote nothing here


def _plain(columns: Mapping[str, Any]) -> dict[str, object]:
    """The columns compared with a plain value (not NULL, not NOT_NULL, not an expression)."""
    return {c: v for c, v in columns.items() if isinstance(v, str | int | float)}


def _needs(schema: Schema, record: EventRecord, error: str) -> list[_Need]:
    """What ``record`` needed: the check that failed, else the keys it inserts."""
    ops = _ops(schema, record)
    checks = [
        _Need(op.table, _plain(op.where), frozenset(op.where))
        for op in ops
        if isinstance(op, Update | Delete) and op.missing is not None and op.missing.reason in error
    ]
    if checks:
        return checks
    needs = []
    for op in ops:
        table = schema.metadata.tables.get(op.table)
        if isinstance(op, Insert) and table is not None:
            key = {c.name: op.values.get(c.name) for c in table.primary_key.columns}
            needs.append(_Need(op.table, key, None))
    return needs


def _hits(op: Op, need: _Need) -> bool:
    """Whether ``op`` may have changed a row ``need`` depends on."""
    if op.table != need.table:
        return False
    rows = _plain(op.values if isinstance(op, Insert) else op.where)
    if any(rows[c] != v for c, v in need.match.items() if c in rows):
        return False  # provably another row
    if isinstance(op, Insert):
        return True  # it took the key, or made the row anew
    if need.columns is None:
        return False  # an insert needed a free key; updates and deletes take none
    return isinstance(op, Delete) or bool(need.columns & set(op.values))


def winner(
    schema: Schema, record: EventRecord, error: str, rivals: Sequence[EventRecord]
) -> EventRecord | None:
    """The last of ``rivals`` that changed a row ``record`` needed, or ``None``."""
    needs = _needs(schema, record, error)
    for rival in reversed(rivals):
        if any(_hits(op, need) for op in _ops(schema, rival) for need in needs):
            return rival
    return None


def explain(schema: Schema, record: EventRecord, error: str, rivals: Iterable[EventRecord]) -> str:
    """``error`` with the event that won the conflict, when one of ``rivals`` did."""
    won = winner(schema, record, error, list(rivals))
    if won is None:
        return error
    return (
        f"{error} (conflict: {won.name} {won.id} at {won.position} from client "
        f"{won.client_id} came first in the global order and won)"
    )
