"""The ``pjai`` command line: each command parses, makes one library call, prints."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import typer

import pjai
from pjai.cli import (
    archive,
    backup,
    bench,
    bookmark,
    demo,
    hybrid,
    legacy,
    memory,
    persona,
    plugin,
    privacy,
    security,
    store,
    sync,
    syncserver,
    web,
)
from pjai.cli.common import errors
from pjai.cli.root import RootGroup

__all__ = ["app", "main"]

app = typer.Typer(
    name="pjai",
    cls=RootGroup,
    help=(
        "PJai: AI personas and their long-term memory on a reactive, event-sourced store.\n\n"
        "Wherever a command asks for a persona, memory, bookmark or conversation, the start "
        "of its id will do, and a persona's name; most persona arguments default to the "
        "active persona (pjai persona activate NAME).\n\n"
        "Shell completion: pjai --install-completion sets it up for your shell; "
        "pjai --show-completion prints the script."
    ),
    no_args_is_help=True,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"pjai {pjai.__version__}")
        raise typer.Exit()


@app.callback()
def root(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Directory holding PJai's data files, for any command "
            "(a command's own --data-dir wins; else PJAI_DATA_DIR, else ./pjai-data).",
            file_okay=False,
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print PJai's version and exit.", is_eager=True, callback=_version
        ),
    ] = False,
) -> None:
    """PJai: AI personas and their long-term memory on a reactive, event-sourced store."""
    # The commands read --data-dir from this command's parameters (pjai.cli.common).


app.command("demo")(demo.demo)
app.add_typer(persona.app, name="persona")
app.add_typer(memory.app, name="memory")
app.add_typer(bookmark.app, name="bookmark")
app.add_typer(bookmark.conversations, name="conversation")
app.add_typer(store.app, name="store")
app.add_typer(bench.app, name="bench")
app.add_typer(syncserver.app, name="sync-server")
app.add_typer(sync.app, name="sync")
app.add_typer(hybrid.db, name="db")
app.add_typer(hybrid.flags, name="flags")
app.add_typer(hybrid.shards, name="shards")
app.command("doctor")(hybrid.doctor)
app.command("verify")(hybrid.verify)
app.command("repair")(hybrid.repair)
app.command("export")(archive.export)
app.command("import")(archive.import_archive)
app.command("backup")(backup.backup_command)
app.command("import-legacy")(legacy.import_legacy)
app.command("serve")(web.serve)
app.add_typer(web.app, name="web")
app.add_typer(security.app, name="security")
app.add_typer(privacy.app, name="privacy")
app.add_typer(plugin.app, name="plugin")


def main() -> None:
    """Run the ``pjai`` command line."""
    warnings.showwarning = _note
    app()


def _note(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
    """A warning as a person reads it: a note on stderr, without the source line."""
    errors.print(f"note: {message}", highlight=False)
