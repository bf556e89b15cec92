"""`pjai privacy`: the data subject's rights, starting with erasure."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pjai.app import Personas
from pjai.app.privacy import erase_persona
from pjai.app.subject import export_subject
from pjai.cli.common import (
    DEFAULT_DATA_DIR,
    DataDirOption,
    JsonFlag,
    PersonaArg,
    confirmed,
    console,
    data_directory,
    open_manager,
    print_json,
    reported,
)
from pjai.errors import QueryError

__all__ = ["app"]

app = typer.Typer(
    help="Privacy rights: erasure of a persona (docs/security.md).", no_args_is_help=True
)


@app.command("erase")
def erase(
    persona: PersonaArg,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask first.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Erase a persona for good: every row of it deleted, its data keys destroyed so that
    its sealed events open nowhere, the files rewritten. Prints a proof without personal
    data. This cannot be undone."""
    with open_manager(data_dir, create=False) as manager:
        try:
            persona_id = Personas(manager).resolve_any(persona)
        except QueryError:
            persona_id = persona  # an erased persona's id: its erasure may be finished

        confirmed(
            f"Erase {persona} ({persona_id}) and everything of it for good?",
            yes,
            "erasing a persona cannot be undone",
        )
        with reported():
            proof = erase_persona(data_directory(data_dir), manager, persona_id)
    if as_json:
        print_json(proof)
        return
    rows = sum(proof.rows.values())
    console.print(
        f"Erased {proof.persona_id}: {rows} rows deleted, {len(proof.keys_destroyed)} data "
        f"keys destroyed ({', '.join(proof.keys_destroyed) or 'none'}), "
        f"{proof.sealed_events} sealed events no longer open; files rewritten: "
        f"{', '.join(proof.rewritten)}.",
        highlight=False,
        soft_wrap=True,
    )
    if proof.plaintext_events:
        console.print(
            f"warning: the event log still holds {proof.plaintext_events} of its events in "
            "plaintext (written before `pjai security init`, or in a directory that is not "
            "encrypted): key destruction cannot reach them.",
            highlight=False,
            soft_wrap=True,
        )


@app.command("export")
def export(
    persona: PersonaArg,
    file: Annotated[Path, typer.Argument(help="The zip to write.", dir_okay=False)],
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace FILE.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Write everything of one persona, in plaintext, to a zip for its data subject:
    each table's rows as JSON and CSV, and its audit trail (GDPR art. 15 and 20)."""
    with open_manager(data_dir, create=False) as manager, reported():
        persona_id = Personas(manager).resolve_any(persona)
        done = export_subject(manager, persona_id, file, overwrite=overwrite)
    if as_json:
        print_json(done)
        return
    rows = sum(done.rows.values())
    console.print(
        f"Wrote {rows} rows and {done.events} events of {persona_id} to {done.path} "
        "(plaintext: keep it safe).",
        highlight=False,
        soft_wrap=True,
    )
