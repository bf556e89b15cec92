"""``pjai demo``: watch a live query react to commits."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from pjai.cli.common import (
    DEFAULT_DATA_DIR,
    DataDirOption,
    JsonFlag,
    a_number,
    console,
    open_manager,
    print_json,
)
from pjai.demo import MAX_DELAY, run_demo
from pjai.store import Row


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
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    delay: Annotated[
        float,
        typer.Option(
            min=0, max=MAX_DELAY, callback=a_number, help="Seconds between scripted commits."
        ),
    ] = 0.8,
    as_json: JsonFlag = False,
) -> None:
    """Seed personas, subscribe a live query, print it each time a commit changes it
    (with --json, only what it did at the end)."""
    with open_manager(data_dir, create=True) as manager:
        where = manager.store_path if manager.store is not None else "SQL only"
        if not as_json:
            console.print(
                Text.assemble(("PJai demo", "bold"), f" · {where} · head e{manager.head()}")
            )
        fired = run_demo(
            manager,
            (lambda _title, _rows: None) if as_json else _show,
            (lambda _text: None) if as_json else _say,
            delay=delay,
        )
        stats = manager.memories.statistics()
        head = manager.head()
    if as_json:
        print_json({"live_results": fired, "head": head, "memories": stats.total})
        return
    console.print(
        f"The live query pushed {fired} result(s); head e{head}; "
        f"the SQL primary holds {stats.total} live memories."
    )


def _say(text: str) -> None:
    console.print(Text(f"  {text}", "dim"))
