"""Personas: create (from a template or not), read, change, activate, deactivate,
delete and restore them.

Settings (personality, memory configuration, privacy) come as groups of values,
changed by a settings file (a mapping with some of the groups) and ``path=value``
edits such as ``memory.capacities.hot=50``; values of edits are JSON (``true``,
``0.4``, ``["a"]``), or text when they are not. A change of a privacy setting is
committed with a ``v1.ConfigChanged`` per setting, holding the old and the new value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from pjai.app import resolve
from pjai.app.erasedkeys import erased_personas
from pjai.app.templates import template
from pjai.errors import ConfigError, QueryError
from pjai.files import read_json
from pjai.hybrid import HybridDatabaseManager
from pjai.memory import Health, MemorySystem, health
from pjai.memory.optimizer import MemoryMove
from pjai.schema import (
    ConfigChanged,
    Event,
    PersonaActivated,
    PersonaCreated,
    PersonaDeactivated,
    PersonaDeleted,
    PersonaRestored,
    PersonaUpdated,
    PrivacySettings,
    new_id,
)
from pjai.schema.models import Persona, persona_from_row
from pjai.schema.validation import validation_error
from pjai.sql.repositories import personas_query

__all__ = [
    "SETTINGS",
    "PersonaChange",
    "PersonaReport",
    "Personas",
    "merge_settings",
    "privacy_changes",
]

SETTINGS = ("personality", "memory", "privacy")
"""The groups of a persona's settings."""

Settings = Path | Mapping[str, Any] | None
"""A settings file, or its content as a mapping."""


@dataclass(frozen=True, slots=True)
class PersonaReport:
    """A persona and the health of its memory."""

    persona: Persona
    health: Health


@dataclass(frozen=True, slots=True)
class PersonaChange:
    """A persona after a change, and what the optimizer runs the change caused did to
    its memories (``moves``: which, from where to where, and why): smaller capacities,
    a lower size limit or a shorter retention can move, archive or delete some.
    ``notes`` says what the change left undone: a size limit the persona stays over."""

    persona: Persona
    moves: list[MemoryMove] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def merge_settings(
    base: Mapping[str, Any], config: Settings = None, sets: Sequence[str] = ()
) -> dict[str, Any]:
    """``base`` settings with the groups of ``config`` and then each ``path=value`` edit."""
    settings: dict[str, Any] = json.loads(json.dumps(base))
    loaded = _load(config)
    settings.update(loaded)
    for item in sets:
        path, sep, text = item.partition("=")
        keys = path.strip().split(".")
        if not sep or keys[0] not in SETTINGS or len(keys) < 2 or not all(keys):
            raise ConfigError(
                f"--set {item!r}: use PATH=VALUE with PATH under {', '.join(SETTINGS)}, "
                "e.g. memory.max_memories=500"
            )
        node: Any = settings
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {key} is not a group of settings")
        node[keys[-1]] = _value(text)
    return settings


def _load(config: Settings) -> dict[str, Any]:
    if config is None:
        return {}
    if isinstance(config, Path):
        try:
            loaded = read_json(config)
        except OSError as exc:
            raise ConfigError(f"cannot read {config}: {exc.strerror or exc}") from exc
        except ValueError as exc:
            raise ConfigError(f"{config} is not valid JSON: {exc}") from exc
        where = str(config)
    else:
        loaded, where = config, "the settings"
    if not isinstance(loaded, Mapping) or not set(loaded) <= set(SETTINGS):
        raise ConfigError(f"{where} must be an object with keys among {', '.join(SETTINGS)}")
    return json.loads(json.dumps(dict(loaded)))  # type: ignore[no-any-return]


def _value(text: str) -> Any:
    """A ``--set`` value: JSON, else the text. Python's NaN and Infinity are not JSON:
    they stay text, which no number setting takes."""
    try:
        return json.loads(text, parse_constant=_not_json)
    except ValueError:
        return text


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _event(kind: type[Event], args: dict[str, Any]) -> Any:
    try:
        return msgspec.convert(args, kind)
    except msgspec.ValidationError as exc:
        raise validation_error(kind.NAME, exc, kind, args) from exc
    except UnicodeEncodeError as exc:  # a lone surrogate where a number or a choice goes
        raise ConfigError(
            f"{kind.NAME}: {exc.object[:40]!r} is not valid Unicode text (a lone surrogate "
            f"at position {exc.start})"
        ) from None


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _builtins(event: PersonaUpdated, group: str) -> Any:
    return msgspec.to_builtins(getattr(event, group))


def privacy_changes(
    persona_id: str, old: PrivacySettings, new: PrivacySettings, source: str
) -> list[ConfigChanged]:
    """One ``v1.ConfigChanged`` per privacy setting that differs between ``old`` and ``new``."""
    return [
        ConfigChanged(
            key=f"privacy.{name}",
            old=getattr(old, name),
            new=getattr(new, name),
            source=source,
            persona_id=persona_id,
        )
        for name in PrivacySettings.__struct_fields__
        if getattr(old, name) != getattr(new, name)
    ]


class Personas:
    """Persona commands on a data directory's manager.

    ``source`` names the interface in the audit records of privacy changes
    (``pjai persona update``, ``web``...).
    """

    def __init__(self, manager: HybridDatabaseManager, *, source: str = "api") -> None:
        self.manager = manager
        self.source = source

    def create(
        self,
        name: str,
        *,
        description: str | None = None,
        style: str | None = None,
        persona_id: str | None = None,
        activate: bool = False,
        config: Settings = None,
        sets: Sequence[str] = (),
        template_name: str | None = None,
    ) -> Persona:
        """Create a persona (and make it the active one); returns it.

        With ``template_name``, the template's description, style and settings are the
        starting point; what is given here replaces them.
        """
        start = template(template_name) if template_name is not None else None
        if persona_id is not None and (taken := self.find(persona_id)) is not None:
            gone = " (deleted: `pjai persona restore` brings it back)" if taken.deleted_at else ""
            raise ConfigError(f"a persona with id {persona_id!r} exists{gone}")
        if persona_id is not None and persona_id in erased_personas(self.manager):
            # The erasure is known here: the id stays the erased persona's. (A device
            # that has not heard of it may give the id: the new persona's keys are of a
            # lineage of their own, which the erasure does not destroy.)
            raise ConfigError(
                f"the persona with id {persona_id!r} was erased: an erased persona's id "
                "is not given again; give another id, or none for a new one"
            )
        args = {
            "persona_id": new_id() if persona_id is None else persona_id,
            "name": name,
            "description": _given(description, start.description if start else ""),
            "communication_style": _given(style, start.communication_style if start else ""),
            **merge_settings(start.settings if start else {}, config, sets),
        }
        event: PersonaCreated = _event(PersonaCreated, args)
        events: list[Event] = [event]
        if activate:
            events.append(PersonaActivated(persona_id=event.persona_id))
        self.manager.commit(*events)
        return self.get(event.persona_id)

    def list(
        self, *, include_deleted: bool = False, name_contains: str | None = None
    ) -> list[Persona]:
        """Personas by name, as this instance sees them: from the store when it is on
        (when syncing, with its own changes the server has not confirmed yet), else
        from the SQL primary."""
        store = self.manager.store
        if store is None:
            return self.manager.personas.list(
                include_deleted=include_deleted, name_contains=name_contains
            )
        query = personas_query(include_deleted=include_deleted, name_contains=name_contains)
        return [persona_from_row(row) for row in store.query(query)]

    def find(self, persona_id: str) -> Persona | None:
        """The persona, deleted or not, as this instance sees it, or ``None``.

        When syncing, that includes its own changes the server has not confirmed yet.
        """
        store = self.manager.store
        if store is None:
            return self.manager.personas.get(persona_id)
        rows = store.query("SELECT * FROM personas WHERE id = :id", {"id": persona_id})
        return persona_from_row(rows[0]) if rows else None

    def get(self, persona_id: str) -> Persona:
        """The live persona, or :class:`~pjai.errors.QueryError`."""
        persona = self.find(persona_id)
        if persona is None or persona.deleted_at is not None:
            raise QueryError(f"no persona {persona_id!r}")
        return persona

    def report(self, persona_id: str) -> PersonaReport:
        """The persona with its memory health."""
        persona = self.get(persona_id)
        return PersonaReport(persona, health(self.manager, persona))

    def update(
        self,
        persona_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        style: str | None = None,
        config: Settings = None,
        sets: Sequence[str] = (),
    ) -> PersonaChange:
        """Change a persona's name, description, style or settings; returns it with the
        memories the change made the optimizer move."""
        persona = self.get(persona_id)
        current = {group: msgspec.to_builtins(getattr(persona, group)) for group in SETTINGS}
        changed = merge_settings(current, config, sets)
        texts = {
            key: value
            for key, value in (
                ("name", name),
                ("description", description),
                ("communication_style", style),
            )
            if value is not None
        }
        # Compared as JSON, where true is not 1: a value of the wrong type is refused
        # below, not taken for the one the persona has.
        given = {g: changed[g] for g in SETTINGS if _json(changed[g]) != _json(current[g])}
        groups: dict[str, Any] = {}
        if given:
            typed: PersonaUpdated = _event(PersonaUpdated, {"persona_id": persona_id, **given})
            # As the settings' types read them (1 is 1.0 for a number of seconds).
            groups = {g: v for g, v in given.items() if _builtins(typed, g) != current[g]}
        if not groups and not texts and (sets or config):
            asked = ", ".join(sets) if sets else "these settings"
            raise ConfigError(f"nothing to change: {persona.name!r} already has {asked}")
        if not groups and not texts:
            raise ConfigError("nothing to change: give --name, --description, --style or --set")
        event: PersonaUpdated = _event(
            PersonaUpdated, {"persona_id": persona_id, **groups, **texts}
        )
        audit: list[ConfigChanged] = []
        if isinstance(event.privacy, PrivacySettings):
            audit = privacy_changes(persona_id, persona.privacy, event.privacy, self.source)
        # Through the memory system: smaller capacities can call for an optimizer run.
        system = MemorySystem(self.manager)
        with system.optimizations() as runs:
            system.commit(event, *audit)
        changed_persona = self.get(persona_id)
        notes = [] if "memory" not in groups else _over_size(system, changed_persona)
        moves = [m for run in runs for m in run.moves]
        return PersonaChange(changed_persona, moves, notes)

    def resolve(self, ref: str | None, *, deleted: bool = False) -> str:
        """The id of the persona ``ref`` names: an id, the start of one, or a name;
        ``None`` is the active persona (see :mod:`pjai.app.resolve`)."""
        return resolve.persona_id(self.manager, ref, deleted=deleted)

    def resolve_any(self, ref: str | None) -> str:
        """The id of the persona ``ref`` names, live or deleted (a live one first);
        ``None`` is the active persona."""
        if ref is None:
            return self.resolve(None)
        try:
            return self.resolve(ref)
        except QueryError as live:
            try:
                return self.resolve(ref, deleted=True)
            except QueryError:
                raise live from None

    def active(self) -> Persona | None:
        """The active persona, if one is."""
        try:
            return self.get(resolve.active_persona_id(self.manager))
        except QueryError:
            return None

    def activate(self, persona_id: str) -> Persona:
        """Make the persona the active one; returns it."""
        self.manager.commit(PersonaActivated(persona_id=persona_id))
        return self.get(persona_id)

    def deactivate(self, persona_id: str) -> Persona:
        """Make the persona inactive (afterwards no persona is active); returns it."""
        self.get(persona_id)
        self.manager.commit(PersonaDeactivated(persona_id=persona_id))
        return self.get(persona_id)

    def delete(self, persona_id: str) -> Persona | None:
        """Delete the persona and its memories (soft); returns it as deleted."""
        self.manager.commit(PersonaDeleted(persona_id=persona_id))
        return self.find(persona_id)

    def restore(self, persona_id: str) -> Persona:
        """Bring back a deleted persona with the memories deleted with it, inactive."""
        persona = self.find(persona_id)
        if persona is None or persona.deleted_at is None:
            raise QueryError(f"no deleted persona {persona_id!r}")
        self.manager.commit(PersonaRestored(persona_id=persona_id, deleted_at=persona.deleted_at))
        return self.get(persona_id)


def _over_size(system: MemorySystem, persona: Persona) -> list[str]:
    """A note when the persona holds more live memories than its ``max_memories``,
    which no deletion brought it within: a lower limit is otherwise taken silently."""
    config = persona.memory
    over = system.excess(persona.id)
    if not over:
        return []
    why = (
        f"pinned memories and those of importance {config.importance_threshold} or more "
        "are never deleted for space"
    )
    if not config.auto_optimize:
        why += "; with memory.auto_optimize off, the others wait for pjai memory optimize"
    return [
        f"{persona.name} holds {config.max_memories + over} live memories, {over} over its "
        f"memory.max_memories of {config.max_memories}: {why}"
    ]


def _given(value: str | None, default: str) -> str:
    return default if value is None else value
