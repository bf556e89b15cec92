"""Options and output helpers shared by the CLI commands.

The consoles never read markup or emoji codes: names, contents and ids are the user's
text and print as typed (``[/]`` would otherwise crash Rich, ``[bold]x`` lose its tag).
Style a fixed part of a line with :class:`rich.text.Text`, e.g.
``Text.assemble(("error:", "bold red"), " ", message)``. How an error is said is
:mod:`pjai.cli.failures`; how a time is read, :mod:`pjai.cli.times`.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer
from rich.console import RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pjai.app import DataDir as DataDirectory
from pjai.app import resolve
from pjai.cli.failures import errors, fail, named_fields, reported
from pjai.cli.grouped import option_group
from pjai.cli.output import JsonFlag, console, print_table, shown
from pjai.cli.times import INCLUDED_END, parse_time
from pjai.cli.times import parse_span as parse_span
from pjai.errors import PjaiError
from pjai.hybrid import HybridDatabaseManager
from pjai.schema.tables import TIERS
from pjai.store import Progress as ProgressCallback

__all__ = [
    "DEFAULT_DATA_DIR",
    "INCLUDED_END",
    "ConversationArg",
    "DataDirOption",
    "IdOpt",
    "JsonFlag",
    "MaxImportance",
    "MinImportance",
    "PersonaArg",
    "PersonaOpt",
    "PersonaRef",
    "PortOpt",
    "TagOpt",
    "TierOpt",
    "TypeOpt",
    "ValueAfterPersona",
    "YesFlag",
    "a_number",
    "confirmed",
    "console",
    "data_directory",
    "errors",
    "fail",
    "for_persona",
    "interactive",
    "leading_persona",
    "named_fields",
    "one_persona",
    "open_manager",
    "open_persona",
    "parse_time",
    "persona_and",
    "print_json",
    "print_result",
    "progress_bar",
    "reported",
    "tier_list",
]

DEFAULT_DATA_DIR = Path("pjai-data")


def _data_dir(ctx: typer.Context, param: typer.CallbackParam, value: Path) -> Path:
    """A command's ``--data-dir``; else the one given before the command
    (``pjai --data-dir X persona list``); else ``PJAI_DATA_DIR``; else the default."""
    source = ctx.get_parameter_source(param.name or "")
    if source is not None and source.name == "COMMANDLINE":
        return value
    given = ctx.find_root().params.get("data_dir")
    return given if isinstance(given, Path) else value


DataDirOption = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar="PJAI_DATA_DIR",
        help="Directory holding PJai's data files.",
        file_okay=False,
        callback=_data_dir,
    ),
]
"""The ``--data-dir`` option; commands turn it into a :class:`pjai.app.DataDir`."""

_PERSONA_HELP = "The persona: its id, the start of its id, or its name"

PersonaArg = Annotated[str, typer.Argument(help=f"{_PERSONA_HELP}.")]
PersonaRef = Annotated[
    str | None,
    typer.Argument(
        metavar="[PERSONA]", help=f"{_PERSONA_HELP} (default: the active one).", show_default=False
    ),
]
"""A persona given as an optional argument; ``--persona`` (:data:`PersonaOpt`) too."""
PersonaOpt = Annotated[
    str | None,
    typer.Option(
        "--persona", "-p", help=f"{_PERSONA_HELP} (default: the active one).", show_default=False
    ),
]


def leading_persona(value: str, what: str) -> Any:
    """The first of ``[PERSONA] VALUE`` arguments (:func:`persona_and` reads them), for
    ``Annotated[str, ...]``: ``what`` says what ``value`` is; the second is
    :data:`ValueAfterPersona`, then ``--persona`` (:data:`PersonaOpt`)."""
    return typer.Argument(
        metavar=f"[PERSONA] {value}",
        help=f"{what}; before it, the persona (default: --persona, else the active one).",
    )


ValueAfterPersona = Annotated[str | None, typer.Argument(hidden=True)]
"""The second of ``[PERSONA] VALUE`` arguments: the value, when the persona comes first."""
ConversationArg = Annotated[str, typer.Argument(help="The conversation's id, or the start of it.")]
YesFlag = Annotated[bool, typer.Option("--yes", "-y", help="Do it without asking.")]
PortOpt = Annotated[
    int, typer.Option(min=0, max=65535, help="Port to listen on; 0 picks a free one.")
]
"""``--port`` of a server (the web app, the sync server); each gives its own default."""


def interactive() -> bool:
    """Whether a person can answer a question: standard input is a terminal."""
    return sys.stdin.isatty()


def confirmed(question: str, yes: bool, refusal: str) -> None:
    """Go on if ``yes`` or the person says so; else exit 1. Without a terminal to ask
    at, ``refusal`` says why nothing was done (and that ``--yes`` does it)."""
    if yes:
        return
    if not interactive():
        raise fail(PjaiError(f"{refusal}; give --yes to do it without asking"))
    if not typer.confirm(shown(question), default=False, err=True):
        errors.print("Nothing done.", highlight=False)
        raise typer.Exit(code=1)


def one_persona(persona: str | None, persona_option: str | None) -> str | None:
    """The persona given as an argument or with ``--persona`` (``None``: the active one)."""
    if persona is not None and persona_option is not None and persona != persona_option:
        raise typer.BadParameter(
            f"{persona!r} and --persona {persona_option!r}: give the persona once",
            param_hint="PERSONA",
        )
    return persona if persona is not None else persona_option


for_persona = option_group(
    "persona", {"persona": PersonaRef, "persona_option": PersonaOpt}, None, one_persona
)
"""Mark a command about one persona: its ``persona: str | None`` parameter becomes the
argument ``[PERSONA]`` and the option ``--persona`` (:data:`PersonaRef`,
:data:`PersonaOpt`; in its place in the help), and it is called with the persona given
(:func:`one_persona`), ``None`` for the active one."""


def persona_and(first: str, second: str | None, option: str | None) -> tuple[str | None, str]:
    """``[PERSONA] VALUE`` arguments: with two, the persona and the value; with one, the
    value, for the persona of ``--persona`` or the active one."""
    if second is None:
        return option, first
    return one_persona(first, option), second


def data_directory(path: Path, *, create: bool = False) -> DataDirectory:
    """The data directory at ``path``; unless ``create``, it must be a PJai one."""
    directory = DataDirectory(path)
    if not create:
        with reported():
            directory.require()
    return directory


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
    data_dir: Path, doing: str = "Catching up", *, create: bool = False, **options: Any
) -> Iterator[HybridDatabaseManager]:
    """The data directory's manager (with a progress bar while it catches up), closed after.

    A path that is not a PJai data directory is an error naming it, and nothing is made
    there; with ``create`` (commands that make the first thing in it), a new one is made.
    """
    with reported():
        with progress_bar(doing) as progress:
            manager = DataDirectory(data_dir).open(progress=progress, create=create, **options)
        with manager:
            yield manager


@contextmanager
def open_persona(
    data_dir: Path, persona: str | None, *, deleted: bool = False
) -> Iterator[tuple[HybridDatabaseManager, str]]:
    """The data directory's manager (:func:`open_manager`) and the id of the persona a
    command is about: the one given (its id, the start of it, or its name; with
    ``deleted``, a deleted one), else the active one."""
    with open_manager(data_dir) as manager:
        yield manager, resolve.persona_id(manager, persona, deleted=deleted)


def print_json(value: Any) -> None:
    """Print ``value`` (structs, dataclasses, dicts, datetimes, paths...) as one line of
    JSON, flushed: a long-running command's line (where a server listens) is read while
    it runs."""
    print(msgspec.json.encode(value, enc_hook=str).decode(), flush=True)


def print_result(value: Any, as_json: bool, text: RenderableType) -> None:
    """Print ``value`` as JSON with ``--json``, else ``text`` (a line, a table) for a human;
    a table is TSV when standard output is not a terminal."""
    if as_json:
        print_json(value)
    elif isinstance(text, Table):
        print_table(text)
    else:
        console.print(text)


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


def a_number(value: float | None) -> float | None:
    """Refuse ``nan`` (a Typer callback): no importance compares with it, so a filter
    with it would find nothing and say nothing."""
    if value is not None and math.isnan(value):
        raise typer.BadParameter("must be a number, got nan")
    return value


MinImportance = Annotated[
    float | None, typer.Option(help="Importance at least this.", callback=a_number)
]
MaxImportance = Annotated[
    float | None, typer.Option(help="Importance at most this.", callback=a_number)
]
