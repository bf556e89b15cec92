"""A legacy row being read: each value it cannot read is reported and replaced."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pjai.hybrid.legacy.values import Problem, Scale, Unreadable, number, text, time_value

__all__ = ["DEFAULT", "Reading", "Row"]

DEFAULT = "PJai's default is kept"
"""What the report says stands in for a value that cannot be read, unless told otherwise."""

Row = dict[str, Any]
"""A legacy row as read from the file: its values by column."""


class Reading:
    """One row being read: each unreadable value is reported and replaced."""

    def __init__(self, row: Row) -> None:
        self.row = row
        self.problems: list[Problem] = []

    def value(self, column: str, read: Any, default: Any, then: str = DEFAULT) -> Any:
        """``read(row[column])``; ``default`` for NULL, and (reported) when unreadable."""
        try:
            result = read(self.row[column])
        except Unreadable as exc:
            self.problems.append(Problem(column, self.row[column], f"{exc}; {then}"))
            return default
        return default if result is None else result

    def text(self, column: str, default: str = "", then: str = "left empty") -> str:
        """A text column that the row can do without: bytes that are not UTF-8 are
        reported and ``default`` stands in."""
        return str(self.value(column, text, default, then))

    def fraction(self, column: str, scale: Scale, default: float) -> Any:
        """A 0-1 or 0-100 column (as ``scale`` says) as a fraction 0..1; None if unset."""

        def read(value: object) -> float | None:
            parsed = number(value)
            return None if parsed is None else scale.fraction(parsed)

        return self.value(column, read, None, f"PJai's default {default} is kept")

    def times(self, now: datetime | None) -> tuple[datetime | None, datetime | None]:
        """created_at and updated_at: either stands in for the other, ``now`` for both."""
        read: dict[str, datetime | None] = {}
        errors: dict[str, str] = {}
        for column in ("created_at", "updated_at"):
            try:
                read[column] = time_value(self.row[column])
            except Unreadable as exc:
                read[column], errors[column] = None, str(exc)
        created_at = read["created_at"] or read["updated_at"] or now
        stand_in = "the import time"
        if not errors and now is not None and created_at is now:
            reason = f"is missing, as is updated_at; {stand_in} stands in"
            self.problems.append(Problem("created_at", None, reason))
        for column, error in errors.items():
            other = "updated_at" if column == "created_at" else "created_at"
            instead = other if read[other] is not None else stand_in
            self.problems.append(Problem(column, self.row[column], f"{error}; {instead} stands in"))
        return created_at, read["updated_at"] or created_at
