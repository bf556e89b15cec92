"""Events drafted from a legacy row, settled against PJai's schema one field at a time.

A :class:`Draft` holds an event's fields and, for each field taken from the legacy row,
where it came from and what stands in when PJai's schema refuses it. Settling validates
the draft as a commit would; a refused field is replaced by its stand-in and reported,
so a value PJai cannot hold costs that value, not the row. A refused field without a
stand-in (an id, a memory's content) rejects the row, or leaves out the one event a
draft marks optional (a message of a conversation).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

from pjai.errors import EventValidationError
from pjai.hybrid.legacy.values import Problem, RowError
from pjai.schema import Event, Schema
from pjai.schema.validation import validation_error

__all__ = ["OMIT", "REJECT", "Built", "Draft", "Source"]


class Fallback(enum.Enum):
    """What replaces a refused field: the event's default, or nothing (the row goes)."""

    OMIT = "the event's default"
    REJECT = "nothing"


OMIT = Fallback.OMIT
REJECT = Fallback.REJECT


@dataclass(frozen=True, slots=True)
class Source:
    """Where a drafted field came from and what stands in when PJai refuses it."""

    column: str
    value: Any
    fallback: Any = OMIT
    """:data:`OMIT` (the event's default), :data:`REJECT`, or the value that stands in."""
    then: str = "PJai's default is kept"
    """What the report says was kept instead."""


@dataclass(slots=True)
class Draft:
    """One event's fields and their sources, keyed by dotted field path."""

    event: type[Event]
    fields: dict[str, Any]
    sources: dict[str, Source] = field(default_factory=dict)
    optional: Source | None = None
    """Set when the event may be left out (and reported as this) rather than the row."""

    def settle(self, schema: Schema, problems: list[Problem]) -> Event | None:
        """The validated event, refused fields replaced; None if an optional one is left out.

        Raises :class:`RowError` when a field without a stand-in is refused.
        """
        sources = dict(self.sources)
        while True:
            try:
                event = msgspec.convert(self.fields, self.event)
                schema.encode(event)
                return event
            except msgspec.ValidationError as exc:
                error = validation_error(self.event.NAME, exc)
            except EventValidationError as exc:
                error = exc
            path = _source_of(error.field, sources)
            source = sources.pop(path) if path is not None else None
            if source is None or source.fallback is REJECT:
                if self.optional is None:
                    raise RowError(str(error)) from error
                reason = f"{_field(error)}{error.reason}; {self.optional.then}"
                problems.append(Problem(self.optional.column, self.optional.value, reason))
                return None
            assert path is not None
            # One column may feed two fields (created_at and occurred_at): said once.
            if not any(p.column == source.column and p.value == source.value for p in problems):
                reason = f"{error.reason}; {source.then}"
                problems.append(Problem(source.column, source.value, reason))
            _replace(self.fields, path, source.fallback)


@dataclass(slots=True)
class Built:
    """The drafts of one legacy row and the values already left out while drafting."""

    drafts: list[Draft]
    problems: list[Problem] = field(default_factory=list)
    parts: int = 0
    """How many optional parts (messages) the legacy row has; when it has some and none
    can be imported, the row is rejected: what is left would be an empty shell of it."""
    part: str = "message"
    """What the optional parts are; each left out is reported at ``{part}s[{index}]``."""

    def settle(self, schema: Schema) -> list[Event]:
        """The row's events; RowError if it has none worth importing."""
        events: list[Event] = []
        kept = 0
        for draft in self.drafts:
            if (event := draft.settle(schema, self.problems)) is not None:
                events.append(event)
                kept += draft.optional is not None
        if self.parts and not kept:
            # Why a part was left out, not a value of it that something stood in for.
            where = re.compile(rf"{self.part}s\[\d+\]")
            lost = [p for p in self.problems if where.fullmatch(p.column)]
            why = f" ({lost[0].column} {lost[0].reason})" if lost else ""
            if self.parts == 1:
                raise RowError(f"its one {self.part} cannot be imported{why}")
            raise RowError(f"none of its {self.parts} {self.part}s can be imported{why}")
        return events


def _source_of(path: str | None, sources: dict[str, Source]) -> str | None:
    """The longest source path that ``path`` lies in (itself, ``a.b`` in ``a``, ``a[1]``)."""
    if path is None:
        return None
    inside = [s for s in sources if path == s or path.startswith((f"{s}.", f"{s}["))]
    return max(inside, key=len, default=None)


def _field(error: EventValidationError) -> str:
    return f"{error.field} " if error.field else ""


def _replace(fields: dict[str, Any], path: str, fallback: Any) -> None:
    *parents, name = path.split(".")
    for parent in parents:
        if not isinstance(inner := fields.get(parent), dict):
            return  # an enclosing field has been replaced already
        fields = inner
    if fallback is OMIT:
        fields.pop(name, None)
    else:
        fields[name] = fallback
