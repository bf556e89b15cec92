"""``pjai demo``: watch a live query react to commits."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from pjai.cli.common import DEFAULT_DATA_DIR, DataDir, console, fail, progress_bar, store_path
from pjai.demo import run_demo
from pjai.errors import PjaiError
from pjai.store import Row, Store


def _show(title: str, rows: list[Row]) -> None:
    table = Table(title=f"live query · {title}", title_justify="left")
    for column in ("persona", "memory", "tier", "importance", "access_count"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.persona, row.memory, row.tier, f"{row.importance:.2f}", str(row.access_count)
        )
    console.print(table)


def demo(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    delay: Annotated[float, typer.Option(help="Seconds between scripted commits.")] = 0.8,
) -> None:
    """Seed a store, subscribe a live query, and print it each time a commit changes it."""
    try:
        with progress_bar("Rebuilding state") as progress:
            store = Store.open(store_path(data_dir), progress=progress)
        with store:
            console.print(f"[bold]PJai demo[/] · store {store.path} · head {store.head}")
            fired = run_demo(
                store, _show, lambda text: console.print(f"  [dim]{text}[/]"), delay=delay
            )
            console.print(f"The live query pushed {fired} result(s); the store is at {store.head}.")
    except PjaiError as exc:
        raise fail(exc) from exc
