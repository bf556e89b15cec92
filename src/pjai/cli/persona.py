"""``pjai persona ...``: create, list, show, update, activate and delete personas.

Settings (personality, memory configuration, privacy) are set with ``--set
path=value``, e.g. ``--set memory.capacities.hot=50 --set privacy.analytics=true``, or
from a JSON file with ``--config``; values are JSON (``true``, ``0.4``, ``["a"]``), or
text when they are not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec
import typer
from rich.table import Table
from rich.text import Text

from pjai.app import SETTINGS, Personas
from pjai.cli.common import (
    DEFAULT_DATA_DIR,
    DataDirOption,
    IdOpt,
    JsonFlag,
    PersonaArg,
    console,
    open_manager,
    print_json,
    print_result,
)
from pjai.schema.models import Persona

app = typer.Typer(help="Personas: their personality, settings and privacy.", no_args_is_help=True)

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


def _show(persona: Persona) -> None:
    active = "  · active" if persona.is_active else ""
    console.print(Text.assemble((persona.name, "bold"), f" ({persona.id}){active}"))
    if persona.description:
        console.print(f"  {persona.description}")
    for group in SETTINGS:
        settings = msgspec.json.encode(getattr(persona, group)).decode()
        console.print(Text.assemble("  ", (group, "bold"), " ", settings))


def _table(personas: list[Persona]) -> Table:
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
    return table


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="The persona's name.")],
    description: Annotated[str, typer.Option(help="What the persona is.")] = "",
    style: Annotated[str, typer.Option(help="Its communication style.")] = "",
    persona_id: IdOpt = None,
    activate: Annotated[bool, typer.Option(help="Make it the active persona.")] = False,
    config: ConfigFile = None,
    sets: Sets = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Create a persona."""
    with open_manager(data_dir) as manager:
        persona = Personas(manager).create(
            name,
            description=description,
            style=style,
            persona_id=persona_id,
            activate=activate,
            config=config,
            sets=sets or (),
        )
    print_result(persona, as_json, f"Created persona {persona.name} ({persona.id}).")


@app.command("list")
def list_personas(
    deleted: Annotated[bool, typer.Option(help="Include deleted personas.")] = False,
    name: Annotated[str | None, typer.Option(help="Only names containing this.")] = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """List personas by name."""
    with open_manager(data_dir) as manager:
        personas = Personas(manager).list(include_deleted=deleted, name_contains=name)
    print_result(personas, as_json, _table(personas))


@app.command()
def show(
    persona_id: PersonaArg,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Show a persona's settings and memory health."""
    with open_manager(data_dir) as manager:
        report = Personas(manager).report(persona_id)
    if as_json:
        print_json(report)
        return
    _show(report.persona)
    health = report.health
    console.print(
        Text.assemble(
            "  ",
            ("health", "bold"),
            f" {health.score:.0f}/100 · {health.memories} memories {health.tiers} · "
            f"fragmentation {health.fragmentation:.0f}",
        )
    )
    for alert in health.alerts:
        console.print(Text.assemble("  ", (alert.level, "yellow"), " ", alert.message))


@app.command()
def update(
    persona_id: PersonaArg,
    name: Annotated[str | None, typer.Option(help="New name.")] = None,
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
    style: Annotated[str | None, typer.Option(help="New communication style.")] = None,
    config: ConfigFile = None,
    sets: Sets = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Change a persona's name, description, style or settings.

    A change of a privacy setting is recorded in the audit trail with its old value.
    """
    with open_manager(data_dir) as manager:
        persona = Personas(manager, source="pjai persona update").update(
            persona_id,
            name=name,
            description=description,
            style=style,
            config=config,
            sets=sets or (),
        )
    if as_json:
        print_json(persona)
    else:
        _show(persona)


@app.command()
def activate(
    persona_id: PersonaArg,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Make a persona the active one."""
    with open_manager(data_dir) as manager:
        persona = Personas(manager).activate(persona_id)
    print_result(persona, as_json, f"Persona {persona.name} ({persona_id}) is now active.")


@app.command()
def delete(
    persona_id: PersonaArg,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Delete a persona and its memories (soft: kept in the log, marked deleted)."""
    with open_manager(data_dir) as manager:
        persona = Personas(manager).delete(persona_id)
    print_result(persona, as_json, f"Deleted persona {persona_id}.")
