"""A legacy persona's ``personality_traits`` as PJai's Big Five, custom and dominant traits.

The desktop app has stored traits three ways: a JSON object of names and strengths, a
JSON array of trait names (its column default is ``'[]'``), and a JSON array of trait
objects (``{"name", "value", "category", "description"}``). Every shape maps:

- a name with a strength: Big Five names (any case) to ``big_five``, others to
  ``custom_traits``; the strengths of one persona are 0-100, or 0-1 when all lie within
  0..1 and one has a fraction;
- a name without a strength (or with one PJai cannot keep) to ``dominant_traits``, so the
  persona keeps it; a trait's ``category`` follows from its name;
- anything else (a description, a second trait of the same name, a name PJai cannot
  hold) is left out and reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from pjai.hybrid.legacy.values import Problem, Unreadable, json_value, number, unstorable
from pjai.schema import BigFive
from pjai.schema.personas import TraitName

__all__ = ["BIG_FIVE", "MAX_DOMINANT", "Traits", "traits"]

BIG_FIVE = frozenset(BigFive.__struct_fields__)
MAX_DOMINANT = 16
"""PJai keeps at most this many dominant traits (``Personality.dominant_traits``)."""
COLUMN = "personality_traits"
NAME_KEYS = ("name", "trait")
VALUE_KEYS = ("value", "score", "strength", "level")
DERIVED_KEYS = frozenset({"category", "id"})  # what PJai derives from the name, or needs not


@dataclass(slots=True)
class Traits:
    """The traits of one persona, as :class:`~pjai.schema.Personality` takes them."""

    big_five: dict[str, int] = field(default_factory=dict)
    custom: dict[str, int] = field(default_factory=dict)
    dominant: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Trait:
    where: str
    raw: Any
    name: str
    value: Any


def traits(value: object) -> Traits:
    """Map a ``personality_traits`` value; what cannot be kept is in ``problems``."""
    result = Traits()
    try:
        parsed = json_value(value, default={})
    except Unreadable as exc:
        result.problems.append(Problem(COLUMN, value, f"{exc}; no traits kept"))
        return result
    if isinstance(parsed, dict):
        entries = [_Trait(f"{COLUMN}.{name}", v, name, v) for name, v in parsed.items()]
    elif isinstance(parsed, list):
        entries = [t for i, item in enumerate(parsed) if (t := _entry(result, i, item))]
    else:
        reason = "is neither a JSON object nor a JSON array of traits; no traits kept"
        result.problems.append(Problem(COLUMN, value, reason))
        return result
    strengths = _strengths(result, entries)
    fractions = all(0 <= s <= 1 for s in strengths.values()) and any(
        isinstance(s, float) for s in strengths.values()
    )
    for entry in entries:
        _place(result, entry, strengths.get(entry.where), fractions=fractions)
    return result


def _entry(result: Traits, index: int, item: Any) -> _Trait | None:
    where = f"{COLUMN}[{index}]"
    if isinstance(item, str):
        return _Trait(where, item, item, None)
    if not isinstance(item, dict):
        result.problems.append(Problem(where, item, "is neither a name nor a trait object"))
        return None
    name = next((item[key] for key in NAME_KEYS if isinstance(item.get(key), str)), None)
    if name is None:
        result.problems.append(Problem(where, item, "has no name; the trait is left out"))
        return None
    value = next((item[key] for key in VALUE_KEYS if item.get(key) is not None), None)
    for key, extra in item.items():
        if key not in NAME_KEYS and key not in VALUE_KEYS and key not in DERIVED_KEYS:
            reason = f"PJai's traits have no {key}; left out"
            result.problems.append(Problem(f"{where}.{key}", extra, reason))
    return _Trait(where, item, name, value)


def _strengths(result: Traits, entries: list[_Trait]) -> dict[str, float]:
    """The readable strengths, by entry; the others are reported."""
    strengths: dict[str, float] = {}
    for entry in entries:
        if entry.value is None:
            continue
        try:
            strength = number(entry.value)
        except Unreadable:
            strength = None
        if strength is None or strength < 0:
            reason = "is not a strength 0-100; the name is kept among the dominant traits"
            result.problems.append(Problem(entry.where, entry.value, reason))
        else:
            strengths[entry.where] = strength
    return strengths


def _place(result: Traits, entry: _Trait, strength: float | None, *, fractions: bool) -> None:
    name = entry.name.strip()
    if not name:
        result.problems.append(Problem(entry.where, entry.raw, "has a blank name; left out"))
        return
    try:
        name = msgspec.convert(name, TraitName)
    except msgspec.ValidationError as exc:
        message = str(exc)
        reason = f"its name {message[:1].lower()}{message[1:]}; the trait is left out"
        result.problems.append(Problem(entry.where, entry.raw, reason))
        return
    if (problem := unstorable(name)) is not None:
        result.problems.append(
            Problem(entry.where, entry.raw, f"its name {problem}; the trait is left out")
        )
        return
    key = name.lower()
    if strength is not None:
        scaled = round(strength * 100 if fractions else strength)
        target, key = (result.big_five, key) if key in BIG_FIVE else (result.custom, name)
        if scaled > 100:
            reason = "is above 100; the name is kept among the dominant traits"
            result.problems.append(Problem(entry.where, entry.value, reason))
        elif key in target or name in result.dominant:
            result.problems.append(Problem(entry.where, entry.raw, "repeats a trait; left out"))
            return
        else:
            target[key] = scaled
            return
    if name in result.dominant or name in result.custom or key in result.big_five:
        result.problems.append(Problem(entry.where, entry.raw, "repeats a trait; left out"))
    elif len(result.dominant) == MAX_DOMINANT:
        reason = f"PJai keeps {MAX_DOMINANT} dominant traits; left out"
        result.problems.append(Problem(entry.where, entry.raw, reason))
    else:
        result.dominant.append(name)
