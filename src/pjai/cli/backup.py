"""`pjai backup`: a copy of a data directory in use."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pjai.app import backup
from pjai.cli.common import (
    DEFAULT_DATA_DIR,
    DataDirOption,
    JsonFlag,
    data_directory,
    print_result,
    reported,
)

__all__ = ["backup_command"]


def backup_command(
    destination: Annotated[
        Path, typer.Argument(help="A new directory for the copy.", file_okay=False)
    ],
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Copy this data directory while it is in use (store and SQLite primary through
    SQLite's online backup); the copy opens as a data directory of its own."""
    source = data_directory(data_dir)
    with reported():
        files = backup(source, destination)
    listed = ", ".join(f"{f.name} ({f.bytes:,} bytes)" for f in files)
    print_result(files, as_json, f"Backed up to {destination}: {listed}.")
