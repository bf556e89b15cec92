"""`pjai privacy`: the data subject's rights, starting with erasure."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pjai.app import Personas
from pjai.app.privacy import erase_persona
from pjai.app.rights import privacy_report, record_consent
from pjai.app.subject import export_subject
from pjai.cli.common import (
    DEFAULT_DATA_DIR,
    DataDirOption,
    JsonFlag,
    PersonaArg,
    PersonaOpt,
    ValueAfterPersona,
    confirmed,
    console,
    data_directory,
    leading_persona,
    open_manager,
    open_persona,
    persona_and,
    print_json,
    reported,
)
from pjai.errors import QueryError

__all__ = ["app"]

app = typer.Typer(
    help=(
        "Privacy rights: a persona's erasure, its data for its data subject, consents, "
        "and the privacy report (docs/security.md)."
    ),
    no_args_is_help=True,
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
    with open_manager(data_dir) as manager:
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
    )
    for reason in proof.unfinished:
        console.print(
            f"not finished: {reason}; run `pjai privacy erase {proof.persona_id} --yes` "
            "again later to finish.",
            highlight=False,
        )
    if proof.plaintext_events:
        console.print(
            f"warning: the event log still holds {proof.plaintext_events} of its events in "
            "plaintext (written before `pjai security init`, or in a directory that is not "
            "encrypted): key destruction cannot reach them.",
            highlight=False,
        )


@app.command("export")
def export(
    first: Annotated[str, leading_persona("FILE", "The zip to write")],
    file: ValueAfterPersona = None,
    persona: PersonaOpt = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace FILE.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Write everything of one persona, in plaintext, to a zip for its data subject:
    each table's rows as JSON and CSV, and its audit trail (GDPR art. 15 and 20)."""
    persona_ref, path = persona_and(first, file, persona)
    with open_manager(data_dir) as manager, reported():
        persona_id = Personas(manager).resolve_any(persona_ref)
        done = export_subject(manager, persona_id, Path(path), overwrite=overwrite)
    if as_json:
        print_json(done)
        return
    rows = sum(done.rows.values())
    console.print(
        f"Wrote {rows} rows and {done.events} events of {persona_id} to {done.path} "
        "(plaintext: keep it safe).",
        highlight=False,
    )


@app.command("consent")
def consent(
    first: Annotated[str, leading_persona("PURPOSE", "What for: memory, analytics, research...")],
    purpose: ValueAfterPersona = None,
    *,
    version: Annotated[str, typer.Option(help="The version of the notice agreed to.")],
    persona: PersonaOpt = None,
    withdraw: Annotated[
        bool, typer.Option("--withdraw", help="Record that consent is withdrawn.")
    ] = False,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Record that the persona's data subject gave (or, with --withdraw, withdrew)
    consent for a purpose; every record stays in the audit trail."""
    persona_ref, what = persona_and(first, purpose, persona)
    with open_persona(data_dir, persona_ref) as (manager, persona_id):
        done = record_consent(manager, persona_id, what, granted=not withdraw, version=version)
    if as_json:
        print_json(done)
        return
    state = "given" if done.granted else "withdrawn"
    console.print(f"Consent for {done.purpose} {state} (notice {done.version}).", highlight=False)


@app.command("report")
def report(
    persona: Annotated[
        str | None, typer.Argument(help="One persona (default: every persona).")
    ] = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """What is held per persona: data, restricted memories, switches, retention,
    consents, keys, and what the event log holds sealed or in plaintext; erasures."""
    with open_manager(data_dir) as manager, reported():
        persona_id = None if persona is None else Personas(manager).resolve_any(persona)
        found = privacy_report(manager, persona_id)
    if as_json:
        print_json(found)
        return
    lines = [f"encrypted: {'yes' if found.encrypted else 'no'}"]
    for p in found.personas:
        off = [name for name, on in p.switches.items() if not on]
        agreed = ", ".join(
            f"{c.purpose} {'given' if c.granted else 'withdrawn'} ({c.version})" for c in p.consents
        )
        lines += [
            f"{p.name} ({p.persona_id}){' - deleted' if p.deleted else ''}",
            f"  holds {p.memories} memories ({p.restricted_memories} restricted), "
            f"{p.conversations} conversations, {p.messages} messages, {p.bookmarks} bookmarks",
            f"  switches off: {', '.join(off) or 'none'}; retention: {p.retention}",
            f"  consents: {agreed or 'none recorded'}",
            f"  data keys: {p.data_keys}; log: {p.sealed_events} events sealed, "
            f"{p.plaintext_events} in plaintext",
        ]
    lines.append(f"erasures: {len(found.erasures)} ({found.erased_keys} keys destroyed)")
    lines += [
        f"  erasure of {persona_id} not finished: damaged copies that `pjai repair` set "
        "aside (*.damaged-* beside store.db and the SQL primary) may hold its rows; "
        "deleting them finishes it"
        if persona_id in found.waiting_for_copies
        else f"  erasure of {persona_id} not finished: its data keys are still here, or a "
        f"file is not rewritten yet; `pjai privacy erase {persona_id} --yes` finishes it"
        for persona_id in found.unfinished_erasures
    ]
    console.print("\n".join(lines), highlight=False)
