"""Options and output helpers shared by the CLI commands.

The consoles never read markup or emoji codes: names, contents and ids are the user's
text and print as typed (``[/]`` would otherwise crash Rich, ``[bold]x`` lose its tag).
Style a fixed part of a line with :class:`rich.text.Text`, e.g.
``Text.assemble(("error:", "bold red"), " ", message)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer
from rich.console import Console, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from pjai.app import DataDir as DataDirectory
from pjai.errors import PjaiError
from pjai.hybrid import HybridDatabaseManager
from pjai.schema.limits import time_problem
from pjai.schema.tables import TIERS
from pjai.store import Progress as ProgressCallback

__all__ = [
    "DEFAULT_DATA_DIR",
    "ConversationArg",
    "DataDirOption",
    "IdOpt",
    "JsonFlag",
    "MaxImportance",
    "MinImportance",
    "PersonaArg",
    "TagOpt",
    "TierOpt",
    "TypeOpt",
    "console",
    "errors",
    "fail",
    "open_manager",
    "parse_time",
    "print_json",
    "print_result",
    "progress_bar",
    "reported",
    "tier_list",
]

DEFAULT_DATA_DIR = Path("pjai-data")

DataDirOption = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar="PJAI_DATA_DIR",
        help="Directory holding PJai's data files.",
        file_okay=False,
    ),
]
"""The ``--data-dir`` option; commands turn it into a :class:`pjai.app.DataDir`."""

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON.")]
PersonaArg = Annotated[str, typer.Argument(help="The persona's id.")]
ConversationArg = Annotated[str, typer.Argument(help="The conversation's id.")]

console = Console(markup=False, emoji=False)
errors = Console(stderr=True, markup=False, emoji=False)


def fail(error: PjaiError) -> typer.Exit:
    """Print a PJai error for a human and return the exit to raise."""
    errors.print(Text.assemble(("error:", "bold red"), " ", str(error)), soft_wrap=True)
    for note in getattr(error, "__notes__", ()):
        errors.print(f"  {note}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


@contextmanager
def reported() -> Iterator[None]:
    """Print a PJai error raised inside for a human and exit with code 1."""
    try:
        yield
    except PjaiError as exc:
        raise fail(exc) from exc


@contextmanager
def progress_bar(description: str) -> Iterator[ProgressCallback]:
    """A Rich progress bar for a library call's ``progress(done, total)``.

    The bar appears on the first report, so work that turns out to be quick prints nothing,
    and stops when the work is done; a later report starts a new one.
    """
    bar: Progress | None = None
    task = None

    def update(done: int, total: int) -> None:
        nonlocal bar, task
        if bar is None:
            bar = Progress(
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=errors,
            )
            bar.start()
            task = bar.add_task(description, total=total)
        assert task is not None
        bar.update(task, completed=done, total=total)
        if done >= total:
            # Finished: lines printed by what follows go below it, not above a live bar.
            bar.stop()
            bar = None

    try:
        yield update
    finally:
        if bar is not None:
            bar.stop()


@contextmanager
def open_manager(
    data_dir: Path, doing: str = "Catching up", **options: Any
) -> Iterator[HybridDatabaseManager]:
    """The data directory's manager (with a progress bar while it catches up), closed after."""
    with reported():
        with progress_bar(doing) as progress:
            manager = DataDirectory(data_dir).open(progress=progress, **options)
        with manager:
            yield manager


def print_json(value: Any) -> None:
    """Print ``value`` (structs, dataclasses, dicts, datetimes...) as one line of JSON."""
    print(msgspec.json.encode(value).decode())


def print_result(value: Any, as_json: bool, text: RenderableType) -> None:
    """Print ``value`` as JSON with ``--json``, else ``text`` (a line, a table) for a human."""
    if as_json:
        print_json(value)
    else:
        console.print(text)


def parse_time(text: str | None, option: str) -> datetime | None:
    """An ISO-8601 time from the command line; one without an offset is UTC."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO-8601 time like 2026-05-01 or 2026-05-01T09:30",
            param_hint=option,
        ) from None
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    if (problem := time_problem(value)) is not None:
        raise typer.BadParameter(f"{text!r}: a time {problem}", param_hint=option)
    return value.astimezone(UTC)


def tier_list(values: list[str] | None) -> list[str] | None:
    """Check ``--tier`` values (a Typer callback)."""
    for value in values or ():
        if value not in TIERS:
            raise typer.BadParameter(f"{value!r} is not a tier: use {', '.join(TIERS)}")
    return values


def _given_id(value: str | None) -> str | None:
    """Refuse an empty ``--id`` (a Typer callback): leaving the option out makes a new id."""
    if value == "":
        raise typer.BadParameter("an id cannot be empty; leave the option out for a new one")
    return value


IdOpt = Annotated[str | None, typer.Option("--id", help="Id (default: new).", callback=_given_id)]
TierOpt = Annotated[
    list[str] | None,
    typer.Option("--tier", help="Only these tiers (repeatable).", callback=tier_list),
]
TypeOpt = Annotated[list[str] | None, typer.Option("--type", help="Only these types.")]
TagOpt = Annotated[list[str] | None, typer.Option("--tag", help="Only memories with all tags.")]
MinImportance = Annotated[float | None, typer.Option(help="Importance at least this.")]
MaxImportance = Annotated[float | None, typer.Option(help="Importance at most this.")]
