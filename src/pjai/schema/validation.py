"""Validation errors in words: msgspec's messages about a refused payload translated
into ones that name the event, the field, and the value or the choices it takes."""

from __future__ import annotations

import re
import reprlib
from collections.abc import Mapping
from typing import Any

import msgspec
from msgspec import inspect

from pjai.errors import EventValidationError
from pjai.schema.fields import PATTERN_WORDS

__all__ = ["NOTHING", "shown", "validation_error"]

_MSGSPEC_PATH = re.compile(r"^(?P<reason>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_MSGSPEC_FIELD = re.compile(r"field `(?P<field>[^`]+)`")
_MSGSPEC_UNKNOWN = re.compile(r"object contains unknown field `(?P<field>[^`]+)`$")
_MSGSPEC_TYPE = re.compile(r"`(int|float|bool|str|array|object|null)`")
_MSGSPEC_PATTERN = re.compile(r"text matching regex '(.*)'")
_TYPE_WORDS = {
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "str": "text",
    "array": "a list",
    "object": "an object",
    "null": "nothing",
}
"""msgspec's names of JSON types, as a person reads them."""

_MSGSPEC_LENGTH = re.compile(r"(text|a list|an object) of length (<=|>=) (\d+)")


def _length_words(found: re.Match[str]) -> str:
    kind, bound, count = found[1], found[2], found[3]
    unit = {"text": "character", "a list": "item", "an object": "key"}[kind]
    unit += "" if count == "1" else "s"
    return f"{kind} of {'at most' if bound == '<=' else 'at least'} {count} {unit}"


NOTHING = object()
"""No value: what a field path of a payload leads to when it leads nowhere."""


def validation_error(
    name: str, error: msgspec.ValidationError, of: type | None = None, given: Any = NOTHING
) -> EventValidationError:
    """Translate a msgspec validation error into one naming the event and the field
    (and, given the type ``of`` that was validated, the choices of a field that takes
    one of some values, or the fields of a group that was given an unknown one; given
    the arguments that were validated, the value that was refused)."""
    match = _MSGSPEC_PATH.match(str(error))
    assert match is not None  # the pattern matches any text
    reason, path = match["reason"], match["path"]
    field = path.lstrip(".") if path else None
    if field is None and (named := _MSGSPEC_FIELD.search(reason)):
        field = named["field"]
    reason = reason[0].lower() + reason[1:] if reason else "is invalid"
    reason = _MSGSPEC_TYPE.sub(lambda m: _TYPE_WORDS[m[1]], reason)
    # msgspec writes a pattern's backslashes doubled.
    reason = _MSGSPEC_PATTERN.sub(
        lambda m: PATTERN_WORDS.get(m[1].replace("\\\\", "\\"), m[0]), reason
    )
    reason = _MSGSPEC_LENGTH.sub(_length_words, reason)
    # msgspec takes no JSON number written with a point or an exponent for an integer.
    reason = reason.replace(
        "a whole number, got a number", "a whole number, got one with a point or exponent"
    )
    if field and of is not None and reason.startswith("invalid enum value"):
        choices = ", ".join(repr(choice) for choice in _choices(of, field))
        reason += f"; one of {choices}" if choices else ""
    elif (unknown := _MSGSPEC_UNKNOWN.match(reason)) is not None:
        group = path.lstrip(".") if path else ""
        known = _field_names(of, group) if of is not None else ()
        reason = f"unknown field `{unknown['field']}`"
        reason += f"; {group or 'the event'} has {', '.join(known)}" if known else ""
    elif ", got " not in reason and (value := _value_at(given, field)) is not NOTHING:
        reason += f", got {shown(value)}"
    return EventValidationError(name, reason, field=field or None)


def _parts(path: str) -> list[str]:
    """The steps of a dotted field path: ``a.b[0]`` is ``a``, ``b``, ``[0]``."""
    return re.findall(r"[^.\[\]]+|\[\d+\]", path)


def _value_at(given: Any, path: str | None) -> Any:
    """The value at a field path of validated arguments (builtins), or ``NOTHING``."""
    value = given
    if path is None or "[...]" in path:  # a mapping's value: msgspec names no key
        return NOTHING
    for part in _parts(path) if value is not NOTHING else ():
        if part.startswith("[") and isinstance(value, list):
            index = int(part[1:-1])
            value = value[index] if index < len(value) else NOTHING
        elif isinstance(value, Mapping):
            value = value.get(part, NOTHING)
        else:
            value = NOTHING
        if value is NOTHING:
            break
    return NOTHING if value is given else value


def _type_at(of: type, path: str) -> Any:
    """The msgspec type info of the field at the dotted ``path`` of type ``of``, or
    ``None``."""
    info: Any = inspect.type_info(of)
    for part in _parts(path):
        info = _one(info)
        if part.startswith("["):
            info = getattr(info, "item_type", None)
        elif isinstance(info, inspect.StructType):
            info = next((f.type for f in info.fields if part in (f.name, f.encode_name)), None)
        else:
            return None
    return _one(info)


def _choices(of: type, path: str) -> tuple[object, ...]:
    """The values a Literal field at the dotted ``path`` of type ``of`` may take."""
    info = _type_at(of, path)
    return info.values if isinstance(info, inspect.LiteralType) else ()


def _field_names(of: type, path: str) -> tuple[str, ...]:
    """The fields of the struct at the dotted ``path`` of type ``of`` (``""``: ``of``'s)."""
    info = _type_at(of, path)
    if not isinstance(info, inspect.StructType):
        return ()
    return tuple(f.encode_name for f in info.fields)


def _one(info: Any) -> Any:
    """``info``, or the one type of an optional one (``X | None``)."""
    if isinstance(info, inspect.UnionType):
        types = [t for t in info.types if not isinstance(t, inspect.NoneType)]
        return types[0] if len(types) == 1 else info
    return info


_SHOWN = reprlib.Repr()
_SHOWN.maxstring = _SHOWN.maxother = 80
_SHOWN.maxlist = _SHOWN.maxdict = 8


def shown(value: Any) -> str:
    """A value as an error message shows it: long text and lists cut short."""
    return _SHOWN.repr(value)
