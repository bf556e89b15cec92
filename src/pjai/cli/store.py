"""``pjai store ...``: inspect and rebuild the reactive store."""

from __future__ import annotations

import json

import typer
from rich.text import Text

from pjai.app import DataDir
from pjai.cli.common import (
    DEFAULT_DATA_DIR,
    DataDirOption,
    JsonFlag,
    console,
    print_result,
    progress_bar,
    reported,
)
from pjai.cli.output import plain

app = typer.Typer(help="Inspect and rebuild the reactive store.", no_args_is_help=True)


@app.command()
def rebuild(data_dir: DataDirOption = DEFAULT_DATA_DIR, as_json: JsonFlag = False) -> None:
    """Recreate the materialized state from the event log."""
    with (
        reported(),
        DataDir(data_dir).open_store(create=False) as store,
        progress_bar("Rebuilding") as progress,
    ):
        applied = store.rebuild(progress)
    print_result({"events": applied}, as_json, f"Rebuilt the state from {applied} event(s).")


@app.command()
def info(data_dir: DataDirOption = DEFAULT_DATA_DIR, as_json: JsonFlag = False) -> None:
    """Show the store's identity, head, event counts and size."""
    with (
        reported(),
        progress_bar("Rebuilding") as progress,
        DataDir(data_dir).open_store(progress=progress, create=False) as store,
    ):
        summary = store.summary()
    if as_json:
        console.print_json(json.dumps(summary))
        return
    for key, value in summary.items():
        console.print(Text.assemble((f"{key:>14}", "bold"), f" {plain(value)}"))
