"""Write operations: what a materializer returns.

Materializers are pure: they turn an event into a list of these values and never touch
a database. Each backend (the store's SQLite state, the SQL primary) renders the same
operations in its own dialect, so both hold the same rows.

``where`` maps column names to the value they must equal; ``None`` means ``IS NULL`` and
:data:`NOT_NULL` means ``IS NOT NULL``.
An operation with ``missing`` set fails the event when no row matches, with that
message and field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "NOT_NULL",
    "Compress",
    "Compressed",
    "Decayed",
    "Decompress",
    "Delete",
    "Greatest",
    "IfNull",
    "Increment",
    "Insert",
    "Missing",
    "Op",
    "TextForTier",
    "Update",
]


class _NotNull:
    """The ``where`` value that matches any non-NULL column value."""

    def __repr__(self) -> str:
        return "NOT_NULL"


NOT_NULL = _NotNull()


@dataclass(frozen=True, slots=True)
class Increment:
    """Add ``by`` to the column's current value (commutative), stopping at ``limit``.

    A count saturates at its column's limit rather than overflow: an overflow would
    refuse the event on PostgreSQL and not on SQLite, and the copies would differ.
    """

    by: int | float
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class Greatest:
    """Keep the larger of the current value and ``value`` (a NULL column takes ``value``)."""

    value: Any


@dataclass(frozen=True, slots=True)
class IfNull:
    """Set ``value`` only if the column is NULL, otherwise keep what is there."""

    value: Any


@dataclass(frozen=True, slots=True)
class Compress:
    """Store the column's current text compressed (cold tier)."""


@dataclass(frozen=True, slots=True)
class Decompress:
    """Store the column's current text uncompressed again."""


@dataclass(frozen=True, slots=True)
class Compressed:
    """An inserted text value to store compressed."""

    text: str


@dataclass(frozen=True, slots=True)
class TextForTier:
    """New text for a row, stored compressed when the row's ``tier`` is ``cold``."""

    text: str


@dataclass(frozen=True, slots=True)
class Decayed:
    """Multiply the column by ``exp(-rate * days)``, ``rate`` read from ``rate_column``."""

    rate_column: str
    days: float


@dataclass(frozen=True, slots=True)
class Missing:
    """How to fail when an update, delete or check matches no row.

    The reason is ``template.format(*args)``, formatted only when it is needed.
    """

    field: str | None
    template: str
    args: tuple[Any, ...] = ()

    @property
    def reason(self) -> str:
        """Why the event fails."""
        return self.template.format(*self.args)


@dataclass(frozen=True, slots=True)
class Insert:
    """Insert one row."""

    table: str
    values: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Update:
    """Update the rows matching ``where``; with ``values`` empty it only checks they exist."""

    table: str
    where: Mapping[str, Any]
    values: Mapping[str, Any]
    missing: Missing | None = None


@dataclass(frozen=True, slots=True)
class Delete:
    """Delete the rows matching ``where``."""

    table: str
    where: Mapping[str, Any]
    missing: Missing | None = None


Op = Insert | Update | Delete
