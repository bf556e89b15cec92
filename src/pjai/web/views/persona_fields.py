"""The fields of a persona's settings form, read off the settings' declared types.

Each setting the form edits is a :class:`SettingField`: its dotted path (as
``pjai persona update --set`` names it), what kind of input it needs and its current
value. :func:`setting_edits` turns what the form holds into ``path=value`` edits for
:meth:`pjai.app.Personas.update`, one per setting that changed, so that a save changes
only what the person changed and validation names the field at fault.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
from msgspec import inspect

from pjai.app.personas import SETTINGS
from pjai.schema.models import Persona

__all__ = [
    "IDENTITY_LABELS",
    "Kind",
    "Merged",
    "SettingField",
    "form_value",
    "label",
    "merge",
    "setting_edits",
    "setting_fields",
]

IDENTITY_LABELS = {
    "name": "Name",
    "description": "Description",
    "communication_style": "Communication style",
}
"""A persona's own fields (not its settings) as the persona forms name them."""

Kind = Literal["bool", "choice", "float", "int", "optional int", "percent", "text", "traits"]
"""The input a setting needs: a percent (0-100) is a slider, ``traits`` a list of chips."""

_LABELS = {
    "big_five": "Big Five",
    "half_life_days": "Half-life (days)",
    "restricted_retention_days": "Restricted data kept (days)",
    "retention_days": "Retention (days)",
    "stale_after_days": "Stale after (days)",
    "target": "Target shares",
    "type": "Type",
}


@dataclass(frozen=True, slots=True)
class SettingField:
    """One setting as the form shows it."""

    path: str
    """Dotted, from the group: ``memory.capacities.hot``."""
    label: str
    kind: Kind
    value: Any
    choices: tuple[str, ...] = ()
    """The values a ``choice`` allows."""

    @property
    def group(self) -> str:
        """The settings group it belongs to: personality, memory or privacy."""
        return self.path.split(".", 1)[0]

    @property
    def section(self) -> str:
        """The nested settings it is part of within its group (``capacities``,
        ``scoring.target``), or ``""`` at the group's top level."""
        return ".".join(self.path.split(".")[1:-1])


def label(name: str) -> str:
    """A setting's name as a person reads it."""
    return _LABELS.get(name, name.replace("_", " ").capitalize())


def setting_fields(persona: Persona) -> list[SettingField]:
    """The persona's editable settings, group by group in declaration order.

    Free-form mappings (a personality's custom traits) have no field: the form leaves
    them as they are.
    """
    fields: list[SettingField] = []
    for group in SETTINGS:
        struct = getattr(persona, group)
        fields.extend(_walk(group, struct, inspect.type_info(type(struct))))
    return fields


def _walk(path: str, value: Any, info: inspect.Type) -> Iterator[SettingField]:
    assert isinstance(info, inspect.StructType)
    for field in info.fields:
        here, current = f"{path}.{field.name}", getattr(value, field.name)
        kind = field.type
        if isinstance(kind, inspect.StructType):
            yield from _walk(here, current, kind)
        elif (found := _kind(kind)) is not None:
            choices: tuple[str, ...] = ()
            if isinstance(kind, inspect.LiteralType):
                choices = tuple(str(v) for v in kind.values)
            plain = msgspec.to_builtins(current)
            yield SettingField(here, label(field.name), found, plain, choices)


def _kind(info: inspect.Type) -> Kind | None:
    if isinstance(info, inspect.BoolType):
        return "bool"
    if isinstance(info, inspect.IntType):
        return "percent" if (info.ge, info.le) == (0, 100) else "int"
    if isinstance(info, inspect.FloatType):
        return "float"
    if isinstance(info, inspect.StrType):
        return "text"
    if isinstance(info, inspect.LiteralType):
        return "choice"
    if isinstance(info, inspect.ListType) and isinstance(info.item_type, inspect.StrType):
        return "traits"
    if isinstance(info, inspect.UnionType):
        kinds = {type(t) for t in info.types}
        if kinds == {inspect.IntType, inspect.NoneType}:
            return "optional int"
    return None


def form_value(field: SettingField, value: Any) -> Any:
    """What an input holds as the setting's value: a number input gives floats, so a
    whole one becomes an int where the setting is one; an emptied text is ``""``."""
    if field.kind in ("int", "percent", "optional int") and isinstance(value, float):
        return int(value) if value.is_integer() else value
    if field.kind == "text" and value is None:
        return ""
    if field.kind == "traits":
        return list(value or [])
    return value


def setting_edits(fields: list[SettingField], values: Mapping[str, Any]) -> list[str]:
    """``path=value`` edits (values as JSON) for the settings whose value in ``values``
    (by path) differs from the one the field was built with."""
    edits = []
    for field in fields:
        if field.path not in values:
            continue
        value = form_value(field, values[field.path])
        if value != field.value:
            edits.append(f"{field.path}={json.dumps(value)}")
    return edits


@dataclass(frozen=True, slots=True)
class Merged:
    """A field saved elsewhere with a new value while a form was open on it."""

    path: str
    theirs: Any
    """The value saved elsewhere."""
    kept_mine: bool
    """Whether the form had changed the field too and keeps what was typed."""


def merge(
    base: Mapping[str, Any], mine: Mapping[str, Any], theirs: Mapping[str, Any]
) -> list[Merged]:
    """Field by field (by path), what an open form does with a version saved elsewhere:
    ``base`` is what the form was built from, ``mine`` what it holds now, ``theirs`` the
    saved version. A field changed there and not here takes their value; one changed on
    both sides keeps what was typed (unless it is the same); the others stay."""
    merged = []
    for path, before in base.items():
        new = theirs.get(path, before)
        if new == before:
            continue
        typed = mine.get(path, before)
        if typed == before:
            merged.append(Merged(path, new, kept_mine=False))
        elif typed != new:
            merged.append(Merged(path, new, kept_mine=True))
    return merged
