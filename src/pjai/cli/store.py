"""``pjai store ...``: inspect and rebuild the reactive store."""

from __future__ import annotations

import json

import typer
from rich.text import Text

from pjai.cli.common import (
    DEFAULT_DATA_DIR,
    DataDir,
    JsonFlag,
    console,
    fail,
    progress_bar,
    store_path,
)
from pjai.errors import PjaiError
from pjai.store import Store

app = typer.Typer(help="Inspect and rebuild the reactive store.", no_args_is_help=True)


@app.command()
def rebuild(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Recreate the materialized state from the event log."""
    try:
        with Store.open(store_path(data_dir)) as store, progress_bar("Rebuilding") as progress:
            applied = store.rebuild(progress)
    except PjaiError as exc:
        raise fail(exc) from exc
    console.print(f"Rebuilt the state from {applied} event(s).")


@app.command()
def info(data_dir: DataDir = DEFAULT_DATA_DIR, as_json: JsonFlag = False) -> None:
    """Show the store's identity, head, event counts and size."""
    try:
        with (
            progress_bar("Rebuilding") as progress,
            Store.open(store_path(data_dir), progress=progress) as store,
        ):
            summary = store.summary()
    except PjaiError as exc:
        raise fail(exc) from exc
    if as_json:
        console.print_json(json.dumps(summary))
        return
    for key, value in summary.items():
        console.print(Text.assemble((f"{key:>14}", "bold"), f" {value}"))
