"""``pjai import-legacy``: bring a PJai desktop app database over as events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pjai.app import DataDir
from pjai.app import import_legacy as run_import
from pjai.cli.common import (
    DEFAULT_DATA_DIR,
    DataDirOption,
    JsonFlag,
    console,
    progress_bar,
    reported,
)
from pjai.hybrid.legacy import REPORT_FILE

__all__ = ["import_legacy"]


def import_legacy(
    path: Annotated[
        Path,
        typer.Argument(
            help="The desktop app's SQLite database; it is only read, never changed.",
            exists=True,
            dir_okay=False,
        ),
    ],
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help=f"Where to list the rows not imported; DATA_DIR/{REPORT_FILE} if not given.",
            dir_okay=False,
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Import the personas, memories and conversations of a PJai desktop database.

    Rows already imported are skipped; rows that cannot be imported are listed, with why.
    An encrypted directory's imported data is sealed like the rest (its passphrase or key
    file is needed).
    A failed import into a new or empty data directory leaves it as it was.
    """
    with reported(), progress_bar("Importing") as progress:
        result = run_import(DataDir(data_dir), path, report=report, progress=progress)
    if as_json:
        print(json.dumps(result.summary()))
        return
    for r in result.rejections:
        line = f"{r.table} {r.row_id}: {r.reason}"
        console.print(line, highlight=False)
    for u in result.unmapped:
        line = f"{u.table} {u.row_id} {u.column} {u.value!r:.80}: {u.reason}"
        console.print(line, highlight=False, markup=False)
    skipped = result.skipped_personas + result.skipped_memories + result.skipped_conversations
    console.print(
        f"Imported {result.personas} persona(s), {result.memories} memories and "
        f"{result.conversations} conversation(s) with {result.messages} message(s); "
        f"skipped {skipped} row(s) already imported; {result.rejected} row(s) not imported; "
        f"{len(result.unmapped)} value(s) not imported.",
        highlight=False,
    )
    console.print(f"Report: {result.report}", highlight=False)
