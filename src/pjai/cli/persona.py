"""``pjai persona ...``: create, list, show, update, activate and delete personas.

Settings (personality, memory configuration, privacy) are set with ``--set
path=value``, e.g. ``--set memory.capacities.hot=50 --set privacy.analytics=true``, or
from a JSON file with ``--config``; values are JSON (``true``, ``0.4``, ``["a"]``), or
text when they are not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer
from rich.table import Table
from rich.text import Text

from pjai.cli.common import (
    DEFAULT_DATA_DIR,
    DataDir,
    IdOpt,
    JsonFlag,
    console,
    open_manager,
    print_json,
)
from pjai.errors import ConfigError, QueryError
from pjai.hybrid import HybridDatabaseManager
from pjai.memory.analytics import health
from pjai.memory.system import MemorySystem
from pjai.schema import (
    PersonaActivated,
    PersonaCreated,
    PersonaDeleted,
    PersonaUpdated,
    new_id,
)
from pjai.schema.event import validation_error
from pjai.schema.models import Persona, persona_from_row

app = typer.Typer(help="Personas: their personality, settings and privacy.", no_args_is_help=True)

SETTINGS = ("personality", "memory", "privacy")

Sets = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="PATH=VALUE",
        help="A setting, e.g. memory.max_memories=500 or personality.big_five.openness=80.",
    ),
]
ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="JSON file with personality, memory and/or privacy settings.",
        exists=True,
        dir_okay=False,
    ),
]


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _settings(base: dict[str, Any], config: Path | None, sets: list[str] | None) -> dict[str, Any]:
    """``base`` settings with the config file's and then each ``--set`` applied."""
    settings: dict[str, Any] = json.loads(json.dumps(base))
    if config is not None:
        try:
            loaded = json.loads(config.read_text())
        except ValueError as exc:
            raise ConfigError(f"{config} is not valid JSON: {exc}") from exc
        if not isinstance(loaded, dict) or not set(loaded) <= set(SETTINGS):
            raise ConfigError(f"{config} must be an object with keys among {', '.join(SETTINGS)}")
        for key, value in loaded.items():
            settings[key] = value
    for item in sets or ():
        path, sep, text = item.partition("=")
        keys = path.strip().split(".")
        if not sep or keys[0] not in SETTINGS or len(keys) < 2 or not all(keys):
            raise ConfigError(
                f"--set {item!r}: use PATH=VALUE with PATH under {', '.join(SETTINGS)}, "
                "e.g. memory.max_memories=500"
            )
        node = settings.setdefault(keys[0], {})
        for key in keys[1:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {key} is not a group of settings")
        node[keys[-1]] = _value(text)
    return settings


def _event(kind: type[Any], args: dict[str, Any]) -> Any:
    try:
        return msgspec.convert(args, kind)
    except msgspec.ValidationError as exc:
        raise validation_error(kind.NAME, exc) from exc


def _read(manager: HybridDatabaseManager, persona_id: str) -> Persona | None:
    """The persona as this instance sees it: with its own pending changes when syncing."""
    if manager.store is None:
        return manager.personas.get(persona_id)
    rows = manager.store.query("SELECT * FROM personas WHERE id = :id", {"id": persona_id})
    return persona_from_row(rows[0]) if rows else None


def _persona(manager: HybridDatabaseManager, persona_id: str) -> Persona:
    persona = _read(manager, persona_id)
    if persona is None or persona.deleted_at is not None:
        raise QueryError(f"no persona {persona_id!r}")
    return persona


def _show(persona: Persona) -> None:
    active = "  · active" if persona.is_active else ""
    console.print(Text.assemble((persona.name, "bold"), f" ({persona.id}){active}"))
    if persona.description:
        console.print(f"  {persona.description}")
    for group in SETTINGS:
        settings = msgspec.json.encode(getattr(persona, group)).decode()
        console.print(Text.assemble("  ", (group, "bold"), " ", settings))


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="The persona's name.")],
    description: Annotated[str, typer.Option(help="What the persona is.")] = "",
    style: Annotated[str, typer.Option(help="Its communication style.")] = "",
    persona_id: IdOpt = None,
    activate: Annotated[bool, typer.Option(help="Make it the active persona.")] = False,
    config: ConfigFile = None,
    sets: Sets = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Create a persona."""
    with open_manager(data_dir) as manager:
        args = {
            "persona_id": new_id() if persona_id is None else persona_id,
            "name": name,
            "description": description,
            "communication_style": style,
            **_settings({}, config, sets),
        }
        event = _event(PersonaCreated, args)
        events = [event, PersonaActivated(persona_id=event.persona_id)] if activate else [event]
        manager.commit(*events)
        persona = _persona(manager, event.persona_id)
    if as_json:
        print_json(persona)
    else:
        console.print(f"Created persona {persona.name} ({persona.id}).")


@app.command("list")
def list_personas(
    deleted: Annotated[bool, typer.Option(help="Include deleted personas.")] = False,
    name: Annotated[str | None, typer.Option(help="Only names containing this.")] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """List personas by name."""
    with open_manager(data_dir) as manager:
        personas = manager.personas.list(include_deleted=deleted, name_contains=name)
    if as_json:
        print_json(personas)
        return
    table = Table("id", "name", "active", "memories (hot/warm/cold cap.)", "deleted")
    for p in personas:
        caps = p.memory.capacities
        table.add_row(
            p.id,
            p.name,
            "yes" if p.is_active else "",
            f"{caps.hot}/{caps.warm}/{caps.cold}",
            "yes" if p.deleted_at else "",
        )
    console.print(table)


@app.command()
def show(
    persona_id: Annotated[str, typer.Argument(help="The persona's id.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Show a persona's settings and memory health."""
    with open_manager(data_dir) as manager:
        persona = _persona(manager, persona_id)
        report = health(manager, persona)
    if as_json:
        print_json({"persona": persona, "health": report})
        return
    _show(persona)
    console.print(
        Text.assemble(
            "  ",
            ("health", "bold"),
            f" {report.score:.0f}/100 · {report.memories} memories {report.tiers} · "
            f"fragmentation {report.fragmentation:.0f}",
        )
    )
    for alert in report.alerts:
        console.print(Text.assemble("  ", (alert.level, "yellow"), " ", alert.message))


@app.command()
def update(
    persona_id: Annotated[str, typer.Argument(help="The persona's id.")],
    name: Annotated[str | None, typer.Option(help="New name.")] = None,
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
    style: Annotated[str | None, typer.Option(help="New communication style.")] = None,
    config: ConfigFile = None,
    sets: Sets = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Change a persona's name, description, style or settings."""
    with open_manager(data_dir) as manager:
        persona = _persona(manager, persona_id)
        current = {group: msgspec.to_builtins(getattr(persona, group)) for group in SETTINGS}
        changed = _settings(current, config, sets)
        args: dict[str, Any] = {
            "persona_id": persona_id,
            **{group: changed[group] for group in SETTINGS if changed[group] != current[group]},
        }
        for key, value in (
            ("name", name),
            ("description", description),
            ("communication_style", style),
        ):
            if value is not None:
                args[key] = value
        if len(args) == 1:
            raise ConfigError("nothing to change: give --name, --description, --style or --set")
        # Through the memory system: smaller capacities can call for an optimizer run.
        MemorySystem(manager).commit(_event(PersonaUpdated, args))
        persona = _persona(manager, persona_id)
    if as_json:
        print_json(persona)
    else:
        _show(persona)


@app.command()
def activate(
    persona_id: Annotated[str, typer.Argument(help="The persona's id.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Make a persona the active one."""
    with open_manager(data_dir) as manager:
        manager.commit(PersonaActivated(persona_id=persona_id))
        persona = _persona(manager, persona_id)
    if as_json:
        print_json(persona)
    else:
        console.print(f"Persona {persona.name} ({persona_id}) is now active.")


@app.command()
def delete(
    persona_id: Annotated[str, typer.Argument(help="The persona's id.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Delete a persona and its memories (soft: kept in the log, marked deleted)."""
    with open_manager(data_dir) as manager:
        manager.commit(PersonaDeleted(persona_id=persona_id))
        persona = _read(manager, persona_id)
    if as_json:
        print_json(persona)
    else:
        console.print(f"Deleted persona {persona_id}.")
