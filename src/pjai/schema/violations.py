"""Broken constraints named alike on every backend, in the words of the people who use
PJai: ``a persona with id 'coach' exists``, ``memories.content must not be NULL``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from pjai.errors import MaterializationError
from pjai.schema.ops import Op

__all__ = ["Violation", "duplicate_row_error", "sqlite_constraint_error", "violation_error"]

_FAILED_COLUMNS = re.compile(r"constraint failed: (?P<columns>[\w.]+(?:, [\w.]+)*)")
_FAILED_CHECK = re.compile(r"CHECK constraint failed: (?P<name>\w+)")


_ROW_NOUNS = {
    "personas": "persona",
    "memories": "memory",
    "memory_links": "memory link",
    "bookmarks": "bookmark",
    "conversations": "conversation",
    "conversation_messages": "conversation message",
}
"""What a row of each table is, in the words of the people who use PJai."""


def duplicate_row_error(event: str, op: Op, columns: Sequence[str]) -> MaterializationError:
    """An inserted row whose key ``columns`` another row holds, named as the user knows
    it: ``a persona with id 'coach' exists``."""
    values = getattr(op, "values", {})
    noun = _ROW_NOUNS.get(op.table, f"row of {op.table}")
    key = ", ".join(f"{c} {values.get(c)!r}" for c in columns)
    return MaterializationError(event, f"a {noun} with {key} exists")


Violation = Literal["foreign key", "check", "not null", "other"]
"""The kinds of constraint a backend names apart (a unique one: :func:`duplicate_row_error`)."""


def violation_error(
    event: str, op: Op, violated: Violation, detail: object
) -> MaterializationError:
    """An op that broke a constraint of its table, named alike on every backend:
    ``detail`` is the rule's name (``check``), the column (``not null``) or the
    database's words (``other``)."""
    table = op.table
    if violated == "foreign key":
        return MaterializationError(event, f"{table} row refers to a row that does not exist")
    if violated == "check":
        return MaterializationError(event, f"violates {table} rule {detail}")
    if violated == "not null":
        return MaterializationError(event, f"{table}.{detail} must not be NULL", field=str(detail))
    return MaterializationError(event, f"violates a constraint of {table}: {detail}")


def sqlite_constraint_error(event: str, op: Op, message: str) -> MaterializationError:
    """Name what an SQLite constraint message says the event violated."""
    if "UNIQUE" in message and (m := _FAILED_COLUMNS.search(message)):
        return duplicate_row_error(event, op, [c.split(".")[-1] for c in m["columns"].split(", ")])
    if "FOREIGN KEY" in message:
        return violation_error(event, op, "foreign key", message)
    if (m := _FAILED_CHECK.search(message)) is not None:
        return violation_error(event, op, "check", m["name"])
    if "NOT NULL" in message and (m := _FAILED_COLUMNS.search(message)):
        return violation_error(event, op, "not null", m["columns"].split(".")[-1])
    return violation_error(event, op, "other", message)
