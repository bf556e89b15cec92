"""Commands that move a data directory's history in and out: ``export`` and ``import``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pjai.app import DataDir, export_archive
from pjai.app import import_archive as restore
from pjai.cli.common import (
    DEFAULT_DATA_DIR,
    DataDirOption,
    JsonFlag,
    console,
    open_manager,
    print_json,
    progress_bar,
    reported,
)

__all__ = ["export", "import_archive"]

ArchivePath = Annotated[Path, typer.Argument(help="The archive file (a zip).", dir_okay=False)]


def export(
    file: ArchivePath,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace FILE if it exists.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Write the event log and a snapshot of every table to a portable archive."""
    with (
        open_manager(data_dir) as manager,
        progress_bar("Exporting") as progress,
    ):
        manifest = export_archive(manager, file, progress=progress, overwrite=overwrite)
    if as_json:
        print_json(manifest)
        return
    rows = manifest.rows
    console.print(
        f"Exported {manifest.events} events, {len(rows)} tables, {sum(rows.values())} rows "
        f"to {file}.",
        highlight=False,
    )


def import_archive(
    file: ArchivePath,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    sync: Annotated[
        bool,
        typer.Option(
            "--sync",
            help="Make the new directory a synced one: the archive's events are pushed "
            "by the next `pjai sync connect` (moving a store to a new server).",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Restore an archive into an empty data directory, checking every checksum. An
    archive of an encrypted directory restores into one holding a copy of that
    directory's key ring (keys.db), opened with its passphrase or key file."""
    with reported(), progress_bar("Importing") as progress:
        result = restore(DataDir(data_dir), file, progress=progress, sync=sync)
    if as_json:
        print_json(result)
        return
    kept = result.events - result.applied
    console.print(
        f"Imported {result.events} events, {len(result.rows)} tables, "
        f"{sum(result.rows.values())} rows from {file} into {data_dir}"
        + (
            f"; {kept} of them were not applied (the log keeps them with the reason)."
            if kept
            else "."
        ),
        highlight=False,
    )
    if result.note:
        console.print(f"note: {result.note}", highlight=False)
