"""Tables paged on the server: the page sizes offered, what a table's request may ask
for, which rows a page covers, what a new total does to the page shown, and the look of
their rows and badge cells.

A paged view keeps the table's ``pagination`` (page, rowsPerPage, rowsNumber, ...) as
the one record of where it is; live queries read that page and count the total.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nicegui import ui

__all__ = [
    "MAX_PAGE",
    "PAGE_SIZES",
    "ROWS_PER_PAGE",
    "TABLE_PROPS",
    "asked_page",
    "badge_cell",
    "settle_total",
    "window",
]

ROWS_PER_PAGE = 25
PAGE_SIZES = (10, 25, 50, 100)
"""The page sizes a table offers (its rows-per-page options)."""

TABLE_PROPS = (
    f'flat bordered dense :rows-per-page-options="{list(PAGE_SIZES)}" '
    ":table-row-class-fn=\"() => 'cursor-pointer'\""
)
"""The look of a paged table whose rows open on a click."""


def badge_cell(colours: Mapping[str, str]) -> str:
    """A table's body cell (its ``body-cell-<column>`` slot) showing the value as a badge
    in the colour ``colours`` gives it; grey for a value it does not name."""
    choices = ", ".join(f"{value}: '{colour}'" for value, colour in colours.items())
    return (
        f'<q-td :props="props"><q-badge :color="{{{choices}}}[props.value] || \'grey\'" '
        ':label="props.value" /></q-td>'
    )


MAX_PAGE = 1_000_000_000 // min(PAGE_SIZES)
"""The highest page a table's request may ask for; SQL's offsets stay far within range."""


def asked_page(asked: Mapping[str, Any]) -> dict[str, int]:
    """The page and size a table's request asks for. The browser says what it wants;
    only the offered sizes and real pages are read."""
    size = asked.get("rowsPerPage", ROWS_PER_PAGE)
    page = asked.get("page", 1)
    return {
        # Past any real page (a billion rows of the smallest size), a page is the last:
        # settle_total moves it back once the total is known.
        "page": min(page, MAX_PAGE) if isinstance(page, int) and page >= 1 else 1,
        "rowsPerPage": size if size in PAGE_SIZES else ROWS_PER_PAGE,
    }


def window(table: ui.table) -> tuple[int, int]:
    """The rows the table's current page covers: ``(limit, offset)``."""
    p = table.pagination
    size = int(p["rowsPerPage"]) or 100
    return size, (int(p["page"]) - 1) * size


def settle_total(table: ui.table, total: int) -> bool:
    """Record a new total; whether the page shown moved back (its last page emptied),
    so that the caller reads the page again."""
    if table.pagination.get("rowsNumber") == total:
        return False
    table.pagination = {**table.pagination, "rowsNumber": total}
    size = int(table.pagination["rowsPerPage"]) or total or 1
    last = max(1, -(-total // size))
    if int(table.pagination["page"]) <= last:
        return False
    table.pagination = {**table.pagination, "page": last}
    return True
