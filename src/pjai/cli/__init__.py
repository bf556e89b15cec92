"""The ``pjai`` command line: each command parses, makes one library call, prints."""

from __future__ import annotations

import typer

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
    store,
    sync,
    syncserver,
)
from pjai.cli.utf8 import Utf8Group

__all__ = ["app", "main"]

app = typer.Typer(
    name="pjai",
    cls=Utf8Group,
    help="PJai: AI personas and their long-term memory on a reactive, event-sourced store.",
    no_args_is_help=True,
    add_completion=False,
)
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


def main() -> None:
    """Run the ``pjai`` command line."""
    app()
