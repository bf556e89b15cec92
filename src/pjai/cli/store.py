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
    progress_bar,
    reported,
)

app = typer.Typer(help="Inspect and rebuild the reactive store.", no_args_is_help=True)


@app.command()
def rebuild(data_dir: DataDirOption = DEFAULT_DATA_DIR) -> None:
    """Recreate the materialized state from the event log."""
    with (
        reported(),
        DataDir(data_dir).open_store() as store,
        progress_bar("Rebuilding") as progress,
    ):
        applied = store.rebuild(progress)
    console.print(f"Rebuilt the state from {applied} event(s).")


@app.command()
def info(data_dir: DataDirOption = DEFAULT_DATA_DIR, as_json: JsonFlag = False) -> None:
    """Show the store's identity, head, event counts and size."""
    with (
        reported(),
        progress_bar("Rebuilding") as progress,
        DataDir(data_dir).open_store(progress=progress) as store,
    ):
        summary = store.summary()
    if as_json:
        console.print_json(json.dumps(summary))
        return
    for key, value in summary.items():
        console.print(Text.assemble((f"{key:>14}", "bold"), f" {value}"))
