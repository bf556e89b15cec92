"""How commands print data: for people, and for programs.

At a terminal a listing is a Rich table; when standard output is not a terminal it is
plain TSV (a header row, then one tab-separated line per row), so that ``| cut -f1``
and ``| sort`` work. ``--json`` prints one JSON value, ``--nl`` one JSON object per
line, ``--csv`` and ``--tsv`` the table's columns whole: a command marked
:func:`listing` takes these flags as one ``fmt`` argument.

A table never cuts an id: columns made by :func:`id_column` (``overflow="fold"``) are
as wide as their longest value, and the others shorten or wrap instead. Nor a URL or a
path: a column made by :func:`whole_column` wraps a long one over several lines, and a
command that shows long ones at a narrow terminal (:func:`wide_terminal`) prints them
below its table, each on a line of its own. Values print
for people through :func:`plain`: ``style, work`` for a list, ``hot 5, warm 3`` for a
mapping, ``-`` for nothing, numbers without exponents.
"""

from __future__ import annotations

import csv
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
import typer
from rich import box
from rich.console import Console
from rich.segment import Segment
from rich.table import Column, Table
from rich.text import Text

from pjai.app.display import OVERRIDES
from pjai.cli.grouped import option_group

__all__ = [
    "CsvFlag",
    "Format",
    "JsonFlag",
    "NlFlag",
    "TerminalConsole",
    "TsvFlag",
    "clipped",
    "console",
    "content_column",
    "id_column",
    "listing",
    "number",
    "output_format",
    "plain",
    "print_rows",
    "print_table",
    "short_column",
    "shown",
    "when",
    "whole_column",
    "wide_terminal",
]

Format = Literal["table", "json", "nl", "csv", "tsv"]

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON.")]
NlFlag = Annotated[bool, typer.Option("--nl", help="Print one JSON object per line.")]
CsvFlag = Annotated[bool, typer.Option("--csv", help="Print CSV with a header row.")]
TsvFlag = Annotated[
    bool,
    typer.Option("--tsv", help="Print tab-separated values (the default when piped)."),
]

_VISIBLE: dict[int, int | str] = {
    **{code: 0x2400 + code for code in range(0x20) if chr(code) not in "\n\t"},
    0x7F: 0x2421,
    **{code: f"\\x{code:02x}" for code in range(0x80, 0xA0)},
    **OVERRIDES,  # a direction override would turn the rest of the line around
}


def shown(text: str) -> str:
    """``text`` with its control characters (but newline and tab) as visible symbols:
    ESC as ``␛``, a C1 control as ``\\x9b``, a direction override as ``⟦RLO⟧``."""
    return text.translate(_VISIBLE)


class TerminalConsole(Console):
    """A console that shows the control characters of what it prints instead of sending
    them: a persona name or memory text that came from another device cannot move the
    cursor, recolour the terminal or set its title. Rich's own codes (styles, cursor
    moves) are segments marked as control or styled apart from their text, and pass."""

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        return super()._render_buffer(
            segment if segment.control else segment._replace(text=shown(segment.text))
            for segment in buffer
        )


console = TerminalConsole(markup=False, emoji=False, soft_wrap=True)
"""Standard output for people. It never reads markup or emoji codes in the user's text,
shows its control characters (:class:`TerminalConsole`), and leaves the wrapping of long
lines to the terminal: piped, a line stays one line."""


def output_format(*, as_json: bool = False, nl: bool = False, csv: bool = False,
                  tsv: bool = False) -> Format:  # fmt: skip
    """The format the flags ask for (a table when none); more than one is a usage error."""
    flags: list[tuple[Format, bool]] = [("json", as_json), ("nl", nl), ("csv", csv), ("tsv", tsv)]
    chosen = [f for f, on in flags if on]
    if len(chosen) > 1:
        given = ", ".join(f"--{f}" for f in chosen)
        raise typer.BadParameter(f"{given}: give one output format, not {len(chosen)}")
    return chosen[0] if chosen else "table"


_FORMAT_FLAGS = {"as_json": JsonFlag, "nl": NlFlag, "csv": CsvFlag, "tsv": TsvFlag}

listing = option_group("fmt", _FORMAT_FLAGS, False, output_format)
"""Mark a command that lists rows: its ``fmt: Format`` parameter becomes the flags
``--json``, ``--nl``, ``--csv`` and ``--tsv`` (in its place in the help), and it is
called with the format they ask for (:func:`output_format`)."""


NARROW = 110
"""A terminal narrower than this shows a table with fewer columns (a memory table without
its times and names, a token table without its times), so that whole ids leave room for
the rest (80 columns show a memory's id, tier, importance and some content)."""


def wide_terminal() -> bool:
    """Whether a table has room for every column: always when piped (TSV and CSV hold
    them all), at a terminal from :data:`NARROW` columns on."""
    return not console.is_terminal or console.width >= NARROW


def id_column(header: str = "id") -> Column:
    """A column of ids: never cut, as wide as its longest id."""
    return Column(header, no_wrap=True, overflow="fold")


def whole_column(header: str) -> Column:
    """A column of values that must show whole (a URL, a path, a message naming one): a
    word longer than the column goes on over the next lines instead of being cut with an
    ellipsis."""
    return Column(header, overflow="fold")


def short_column(header: str) -> Column:
    """A column of short values (a tier, a number, a time): never wrapped, so that the
    free text beside it gives way first."""
    return Column(header, no_wrap=True)


def content_column(header: str = "content", width: int = 60) -> Column:
    """A column of free text, at most ``width`` wide; it narrows first when the table
    does not fit. Give its cells as :func:`clipped` text to keep each on one line."""
    return Column(header, max_width=width)


def clipped(text: str) -> Text:
    """A table cell shown on one line, cut with an ellipsis where its column ends (CSV and
    TSV hold it whole)."""
    return Text(" ".join(text.split()), no_wrap=True, overflow="ellipsis")


def _cell(value: Any) -> str:
    return value.plain if isinstance(value, Text) else str(value)


def _rows(table: Table) -> list[list[str]]:
    header = [_cell(c.header) for c in table.columns]
    cells = [[_cell(v) for v in c.cells] for c in table.columns]
    return [header, *map(list, zip(*cells, strict=True))]


def _write(table: Table, dialect: type[csv.Dialect]) -> None:
    writer = csv.writer(sys.stdout, dialect=dialect, lineterminator="\n")
    writer.writerows(_rows(table))


def print_table(table: Table, fmt: Format = "table") -> None:
    """Print ``table``: for people at a terminal, else (and for ``tsv``/``csv``) as TSV
    or CSV."""
    if fmt == "csv":
        _write(table, csv.excel)
    elif fmt == "tsv" or not console.is_terminal:
        _write(table, csv.excel_tab)
    else:
        if table.box is box.HEAVY_HEAD:  # Rich's default: lines only under the header
            table.box, table.show_edge = box.SIMPLE_HEAD, False
        for column in table.columns:
            if column.overflow == "fold" and column.no_wrap:
                longest = max((len(_cell(v)) for v in column.cells), default=0)
                column.min_width = max(longest, len(_cell(column.header)))
        console.print(table, soft_wrap=False)


def print_rows(value: Sequence[Any], table: Table, fmt: Format) -> None:
    """Print a listing: ``value`` as JSON (``json``, ``nl``: each item a line) or
    ``table`` (for people, TSV or CSV)."""
    if fmt == "json":
        print(msgspec.json.encode(value, enc_hook=str).decode())
    elif fmt == "nl":
        for item in value:
            print(msgspec.json.encode(item, enc_hook=str).decode())
    else:
        print_table(table, fmt)


def number(value: float | int, places: int = 6) -> str:
    """A number for people: integers whole, others to three significant digits and at
    most ``places`` decimals, never in exponent form (``0.000001``, not ``1e-06``)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or (math.isfinite(value) and value.is_integer()):
        return str(int(value))
    if not math.isfinite(value):
        return str(value)
    digits = min(places, max(0, 2 - math.floor(math.log10(abs(value)))))
    text = f"{value:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("0", "-0"):
        return f"<{10**-places:.{places}f}" if value > 0 else f"-<{10**-places:.{places}f}"
    return text


def when(value: datetime | None) -> str:
    """A time for people: ``2026-05-04 09:30`` (UTC), or ``-``."""
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M}"


def plain(value: Any) -> str:
    """A value for people: lists as ``a, b``, mappings as ``key value, ...``, nothing (and
    empty text) as ``-``, yes/no, numbers by :func:`number`, times by :func:`when`."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return number(value)
    if isinstance(value, datetime):
        return when(value)
    if isinstance(value, str):
        return value or "-"
    if isinstance(value, msgspec.Struct):
        value = msgspec.to_builtins(value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {plain(v)}" for k, v in value.items()) or "-"
    if isinstance(value, Sequence):
        return ", ".join(plain(v) for v in value) or "-"
    return str(value)
