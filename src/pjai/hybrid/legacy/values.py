"""Reading one legacy value: numbers, flags, times, JSON, tags and per-database scales.

Each reader returns the value PJai stores or raises :class:`Unreadable` saying what is
wrong with it; the row mapping decides what stands in (:mod:`pjai.hybrid.legacy.rows`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from pjai.errors import PjaiError
from pjai.hybrid.flags import parse_bool
from pjai.schema.fields import Tag
from pjai.schema.limits import encoding_problem, text_problem
from pjai.schema.validation import validation_error

__all__ = [
    "EPOCH_MS",
    "MAX_TAGS",
    "Problem",
    "RowError",
    "Scale",
    "Unreadable",
    "first",
    "flag",
    "json_value",
    "number",
    "required_text",
    "row_id_of",
    "tags",
    "text",
    "time_value",
    "unstorable",
]

_TOO_DEEP = "its arrays or objects are nested too deeply"
EPOCH_MS = 1e11  # larger epoch numbers are milliseconds: 1e11 s is past the year 5000
MAX_TAGS = 64
"""PJai keeps at most this many tags on a memory (``Tags`` in the schema)."""


class RowError(PjaiError):
    """A legacy row cannot be imported at all; the message says why."""


class Unreadable(PjaiError, ValueError):
    """A legacy value PJai cannot take as what its column holds; the message says why."""


@dataclass(frozen=True, slots=True)
class Problem:
    """A value of an imported row that was not imported: where, the value, why."""

    column: str
    """The legacy column, with the place inside it: ``tags[3]``, ``messages[0].time``."""
    value: Any
    reason: str
    """What is wrong with the value and what PJai keeps instead."""


@dataclass(frozen=True, slots=True)
class Scale:
    """The scale a legacy database uses for a column of fractions: 0-1 or 0-100."""

    top: int
    """1 or 100: the value that means "all"."""

    @property
    def name(self) -> str:
        """``"0-1"`` or ``"0-100"``."""
        return f"0-{self.top}"

    @classmethod
    def detect(cls, values: Iterable[object]) -> Scale:
        """The scale of a column holding ``values``.

        0-1 when most numbers lie within 0..1 and one of them has a fraction: 0.8 then
        means 80%, and a stray 7 is out of range rather than a reason to read every other
        value as a hundredth. Otherwise 0-100, the desktop app's own scale.
        """
        numbers = []
        for value in values:
            try:
                if (parsed := number(value)) is not None:
                    numbers.append(parsed)
            except Unreadable:
                continue
        unit = [n for n in numbers if 0 <= n <= 1]
        fraction = any(not float(n).is_integer() for n in unit)
        return cls(1 if fraction and 2 * len(unit) > len(numbers) else 100)

    def fraction(self, value: float) -> float:
        """``value`` on this scale as a fraction 0..1; Unreadable if out of range, or if
        it is a fraction of 1 on a 0-100 scale (a value from a 0-1 release, or a
        hundredth of a percent: which, the database cannot say)."""
        if not 0 <= value <= self.top:
            raise Unreadable(f"is outside the {self.name} scale of this database")
        if self.top == 100 and 0 < value < 1:
            raise Unreadable(
                "is below 1 on this database's 0-100 scale: it may be on the 0-1 scale "
                "of an older release"
            )
        return value / self.top


def row_id_of(value: object, column: str = "id") -> str | None:
    """A legacy id as PJai's text id; None for NULL; :class:`RowError` naming ``column``
    when it is not text."""
    return None if value is None else required_text(value, column)


def required_text(value: object, column: str) -> str:
    """:func:`text` of a column the row cannot do without: :class:`RowError` naming the
    column when it is not text."""
    try:
        return text(value)
    except Unreadable as exc:
        raise RowError(f"{column} {exc}") from None


def text(value: object) -> str:
    """A value as text; NULL is empty. SQLite may keep text as a blob, or as bytes that
    are not UTF-8 (read as bytes, see :mod:`pjai.hybrid.legacy.source`): UTF-8 bytes
    are their text, any other would be corrupted (:class:`Unreadable`)."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            shown = value[:16].hex() + ("..." if len(value) > 16 else "")
            raise Unreadable(f"holds binary data, not UTF-8 text (x'{shown}')") from None
    return str(value)


def unstorable(value: str) -> str | None:
    """Why no backend could store the text ``value`` (a NUL character, a lone
    surrogate), or ``None``: checked for each item of a list or object, so that one item
    costs that item rather than the whole column."""
    return text_problem(value) or encoding_problem(value)


def first(mapping: dict[str, Any], *keys: str) -> tuple[str, Any]:
    """The first of ``keys`` with a value in ``mapping`` (not NULL, not blank text), and
    that value; ``keys[0]`` and its value when none has one."""
    for key in keys:
        value = mapping.get(key)
        if value is not None and not (isinstance(value, str) and not value.strip()):
            return key, value
    return keys[0], mapping.get(keys[0])


def json_value(value: object, *, default: object) -> Any:
    """A JSON column's value; ``default`` for NULL or blank text.

    Bytes that are not UTF-8 cost only the items holding them (:func:`_json_text`).
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if not isinstance(value, str | bytes):
        return value
    try:
        return json.loads(_json_text(value) if isinstance(value, bytes) else value)
    except ValueError as exc:
        raise Unreadable(f"is not valid JSON: {exc}") from None
    except RecursionError:
        raise Unreadable(f"is not JSON PJai can read: {_TOO_DEEP}") from None


def _json_text(value: bytes) -> str:
    """The text of a JSON column kept as bytes.

    Bytes that are not UTF-8 (one message written in another encoding) are read as
    lone surrogates, which PJai refuses in any text: only the items holding them are
    left out and reported, not every item of the column.
    """
    try:
        return value.decode(json.detect_encoding(value))  # UTF-8, -16 or -32
    except UnicodeDecodeError:
        return value.decode("utf-8", "surrogateescape")


def number(value: object) -> Any:
    """An int (or a float with a fraction) from a number or numeric text; None for NULL."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise Unreadable("is not a number") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Unreadable("is not a number")
    return int(value) if isinstance(value, float) and value.is_integer() else value


def flag(value: object) -> bool | None:
    """A boolean from 0/1 or true/false text (and yes/no, on/off); None for NULL."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    try:
        if isinstance(value, str):
            return parse_bool(value, "value")
    except PjaiError:
        pass
    raise Unreadable("is not a boolean (0/1, true/false)")


def time_value(value: object) -> datetime | None:
    """ISO-8601 text (naive means UTC) or epoch seconds/milliseconds, in UTC; NULL is None."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    parsed: Any = value
    if isinstance(value, str):
        try:
            # Eight digits are a compact ISO date (20240102), not seconds in 1970.
            if len(value.strip()) == 8 and value.strip().isdigit():
                raise ValueError(value)
            parsed = float(value)
        except ValueError:
            try:
                moment = datetime.fromisoformat(value.strip())
            except ValueError:
                raise Unreadable("is not ISO-8601 nor epoch seconds") from None
            if moment.tzinfo is None:
                return moment.replace(tzinfo=UTC)
            try:
                return moment.astimezone(UTC)
            except OverflowError:  # 0001-01-01T00:00+14:00 is before the year 1 in UTC
                raise Unreadable(
                    "is not a time PJai can keep (before year 1 or after 9999 in UTC)"
                ) from None
    if isinstance(parsed, bool) or not isinstance(parsed, int | float):
        raise Unreadable("is not a time")
    try:
        return datetime.fromtimestamp(parsed / 1000 if abs(parsed) >= EPOCH_MS else parsed, UTC)
    except (OverflowError, OSError, ValueError):
        raise Unreadable("is not a time") from None


def tags(value: object) -> tuple[list[str], list[Problem]]:
    """Tags from a JSON array or comma-separated text, and the ones PJai cannot keep.

    Text that is not JSON (an array; an object is refused) is split at commas, so
    ``"work, urgent"`` and ``'["work", "urgent"]'`` give the same tags. Blank entries are
    skipped.
    """
    if value is None:
        return [], []
    try:
        raw = text(value) if isinstance(value, bytes) else value
    except Unreadable as exc:
        return [], [Problem("tags", value, f"{exc}; no tags kept")]
    parsed: Any = raw
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw) if raw.lstrip().startswith(("[", "{")) else raw
        except ValueError as exc:
            problem = Problem("tags", value, f"is not valid JSON ({exc}); no tags kept")
            return [], [problem]
        except RecursionError:
            return [], [Problem("tags", value, f"{_TOO_DEEP}; no tags kept")]
    if isinstance(parsed, str):
        parsed = parsed.split(",")
    if not isinstance(parsed, list):
        reason = "is neither a JSON array nor comma-separated text; no tags kept"
        return [], [Problem("tags", value, reason)]
    kept: list[str] = []
    problems: list[Problem] = []
    for index, tag in enumerate(parsed):
        name = tag.strip() if isinstance(tag, str) else tag
        if name == "":
            continue
        where = f"tags[{index}]"
        if not isinstance(name, str):
            problems.append(Problem(where, tag, "is not text; the tag is left out"))
        elif len(kept) == MAX_TAGS:
            problems.append(Problem(where, tag, f"PJai keeps {MAX_TAGS} tags; left out"))
        elif (unfit := unstorable(name)) is not None:
            problems.append(Problem(where, tag, f"{unfit}; the tag is left out"))
        else:
            try:
                kept.append(msgspec.convert(name, Tag))
            except msgspec.ValidationError as exc:
                said = validation_error("a tag", exc).reason  # in words, as events say it
                problems.append(Problem(where, tag, f"{said}; the tag is left out"))
    return kept, problems
