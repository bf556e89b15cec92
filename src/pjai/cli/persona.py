"""``pjai persona ...``: create, list, show, update, activate, deactivate, delete and
restore personas, and the templates to start one from.

Settings (personality, memory configuration, privacy) are set with ``--set
path=value``, e.g. ``--set memory.capacities.hot=50 --set privacy.analytics=true``, or
from a JSON file with ``--config``; values are JSON (``true``, ``0.4``, ``["a"]``), or
text when they are not. A persona is named by its id, the start of its id or its name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer
from rich.table import Column, Table
from rich.text import Text

from pjai.app import SETTINGS, TEMPLATES, Personas
from pjai.cli.common import (
    DEFAULT_DATA_DIR,
    DataDirOption,
    IdOpt,
    JsonFlag,
    PersonaArg,
    PersonaRef,
    YesFlag,
    confirmed,
    console,
    named_fields,
    open_manager,
    open_persona,
    print_json,
    print_result,
)
from pjai.cli.memory.options import moves_text
from pjai.cli.output import (
    Format,
    clipped,
    content_column,
    id_column,
    listing,
    plain,
    print_rows,
    short_column,
    when,
    wide_terminal,
)
from pjai.schema.models import Persona

# A setting's error names the --set that gave it: --set 'memory.capacities.hot=x'.
app = typer.Typer(
    help="Personas: their personality, settings and privacy.",
    no_args_is_help=True,
    cls=named_fields(dict.fromkeys(SETTINGS, "sets")),
)

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


def _settings(value: dict[str, Any], path: str = "") -> list[str]:
    """``path value`` for each setting, nested groups dotted as ``--set`` names them."""
    parts = []
    for key, v in value.items():
        if isinstance(v, dict) and v:
            parts += _settings(v, f"{path}{key}.")
        else:
            parts.append(f"{path}{key} {plain(v)}")
    return parts


def _show(persona: Persona) -> None:
    active = "  · active" if persona.is_active else ""
    deleted = f"  · deleted {plain(persona.deleted_at)}" if persona.deleted_at else ""
    console.print(Text.assemble((persona.name, "bold"), f" ({persona.id}){active}{deleted}"))
    if persona.description:
        console.print(f"  {persona.description}", highlight=False)
    if persona.communication_style:
        console.print(
            Text.assemble("  ", ("style", "bold"), " ", persona.communication_style),
            highlight=False,
        )
    for group in SETTINGS:
        values: dict[str, Any] = msgspec.to_builtins(getattr(persona, group))
        flat = {k: v for k, v in values.items() if not (isinstance(v, dict) and v)}
        console.print(Text.assemble("  ", (group, "bold"), " ", " · ".join(_settings(flat))))
        for key, v in values.items():
            if key not in flat:
                console.print(Text.assemble("    ", (key, "bold"), " ", " · ".join(_settings(v))))


def _table(personas: list[Persona]) -> Table:
    """Personas as a table: id, name, whether active, tier capacities and when deleted;
    at a narrow terminal the capacities, or when one of them is deleted, the times."""
    wide = wide_terminal()
    any_deleted = any(p.deleted_at is not None for p in personas)
    shows_capacity, shows_deleted = wide or not any_deleted, wide or any_deleted
    capacities = [f"{c.hot}/{c.warm}/{c.cold}" for c in (p.memory.capacities for p in personas)]
    width = max(map(len, capacities), default=0)  # a capacity cut is another number
    columns = [id_column(), Column("name"), short_column("active")]
    if shows_capacity:
        columns.append(Column("capacity hot/warm/cold", min_width=width))
    if shows_deleted:
        columns.append(Column("deleted", min_width=10))
    table = Table(*columns)
    for p, capacity in zip(personas, capacities, strict=True):
        cells = [p.id, p.name, "yes" if p.is_active else ""]
        if shows_capacity:
            cells.append(capacity)
        if shows_deleted:
            cells.append("" if p.deleted_at is None else when(p.deleted_at))
        table.add_row(*cells)
    return table


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="The persona's name.")],
    template: Annotated[
        str | None,
        typer.Option(help="Start from a template (pjai persona templates lists them)."),
    ] = None,
    description: Annotated[
        str | None, typer.Option(help="What the persona is.", show_default=False)
    ] = None,
    style: Annotated[
        str | None, typer.Option(help="Its communication style.", show_default=False)
    ] = None,
    persona_id: IdOpt = None,
    activate: Annotated[bool, typer.Option(help="Make it the active persona.")] = False,
    config: ConfigFile = None,
    sets: Sets = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Create a persona, from a template or not."""
    with open_manager(data_dir, create=True) as manager:
        persona = Personas(manager).create(
            name,
            description=description,
            style=style,
            persona_id=persona_id,
            activate=activate,
            config=config,
            sets=sets or (),
            template_name=template,
        )
    active = " It is the active persona." if persona.is_active else ""
    print_result(persona, as_json, f"Created persona {persona.name} ({persona.id}).{active}")


@app.command("list")
@listing
def list_personas(
    deleted: Annotated[bool, typer.Option(help="Include deleted personas.")] = False,
    name: Annotated[str | None, typer.Option(help="Only names containing this.")] = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    fmt: Format = "table",
) -> None:
    """List personas by name."""
    with open_manager(data_dir) as manager:
        personas = Personas(manager).list(include_deleted=deleted, name_contains=name)
    print_rows(personas, _table(personas), fmt)


@app.command()
@listing
def templates(
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    fmt: Format = "table",
) -> None:
    """The templates that pjai persona create --template starts from."""
    del data_dir  # taken as every command takes it: templates come with PJai, not the data
    found = list(TEMPLATES.values())
    table = Table("template", content_column("description"), content_column("style"))
    for t in found:
        table.add_row(t.name, clipped(t.description), clipped(t.communication_style))
    print_rows(found, table, fmt)


@app.command()
def show(
    persona: PersonaRef = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Show a persona's settings and memory health."""
    with open_persona(data_dir, persona) as (manager, persona_id):
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
            f" {health.score:.0f}/100 · {health.memories} memories ({plain(health.tiers)}) · "
            f"fragmentation {health.fragmentation:.0f}",
        )
    )
    for alert in health.alerts:
        console.print(Text.assemble("  ", (alert.level, "yellow"), " ", alert.message))


@app.command()
def update(
    persona: PersonaRef = None,
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
    with open_persona(data_dir, persona) as (manager, persona_id):
        changed = Personas(manager, source="pjai persona update").update(
            persona_id,
            name=name,
            description=description,
            style=style,
            config=config,
            sets=sets or (),
        )
    if as_json:
        persona_json = msgspec.to_builtins(changed.persona)
        print_json({**persona_json, "moves": changed.moves, "notes": changed.notes})
        return
    _show(changed.persona)
    if changed.moves:
        console.print(moves_text(changed.moves), highlight=False, markup=False)
    for note in changed.notes:
        console.print(f"Note: {note}", highlight=False, markup=False)


@app.command()
def activate(
    persona: PersonaArg,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Make a persona the active one: commands use it when no persona is given."""
    with open_persona(data_dir, persona) as (manager, persona_id):
        made = Personas(manager).activate(persona_id)
    print_result(made, as_json, f"Persona {made.name} ({made.id}) is now active.")


@app.command()
def deactivate(
    persona: PersonaRef = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Make the active persona (or the one given) inactive: then no persona is active."""
    with open_persona(data_dir, persona) as (manager, persona_id):
        done = Personas(manager).deactivate(persona_id)
    print_result(
        done, as_json, f"Persona {done.name} ({done.id}) is no longer active; no persona is."
    )


@app.command()
def delete(
    persona: PersonaArg,
    yes: YesFlag = False,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Delete a persona and its memories (soft: pjai persona restore brings them back).

    Deleting the active persona asks first, unless --yes.
    """
    with open_persona(data_dir, persona) as (manager, persona_id):
        personas = Personas(manager)
        target = personas.get(persona_id)
        if target.is_active:
            confirmed(
                f"{target.name} ({target.id}) is the active persona. Delete it and its memories?",
                yes,
                f"{target.name} ({target.id}) is the active persona: not deleted",
            )
        deleted = personas.delete(target.id)
    note = " No persona is active now." if target.is_active else ""
    print_result(deleted, as_json, f"Deleted persona {target.name} ({target.id}).{note}")


@app.command()
def restore(
    persona: Annotated[
        str, typer.Argument(help="The deleted persona: its id, the start of its id, or its name.")
    ],
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Bring back a deleted persona with the memories deleted with it (it stays inactive)."""
    with open_persona(data_dir, persona, deleted=True) as (manager, persona_id):
        back = Personas(manager).restore(persona_id)
    print_result(back, as_json, f"Restored persona {back.name} ({back.id}).")
