"""A table paged on the server, with its total above it, fed by live panels.

The browser holds only the page it shows. One live panel counts the rows the filter
selects (the pagination's total), one reads the current page with LIMIT/OFFSET.
Paging replaces the page's panel; a new filter replaces both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from nicegui import ui
from nicegui.events import GenericEventArguments

from pjai.store import Row
from pjai.web.app import WebApp
from pjai.web.live import LivePanel
from pjai.web.paging import ROWS_PER_PAGE, TABLE_PROPS, asked_page, settle_total

__all__ = ["PagedFeed", "PagedTable"]


class PagedTable(ui.table):
    """A table paged on the server, empty on its first page until its feed fills it;
    ``sort`` is how it sorts at first (``sortBy``, ``descending``). The values of its
    :attr:`text_columns` count as its text (what a simulated user sees)."""

    text_columns: ClassVar[tuple[str, ...]]

    def __init__(self, columns: list[dict[str, Any]], row_key: str, **sort: Any) -> None:
        super().__init__(
            rows=[],
            columns=columns,
            row_key=row_key,
            pagination={"page": 1, "rowsPerPage": ROWS_PER_PAGE, **sort, "rowsNumber": 0},
        )

    def _displayed_contents(self, *, only_visible: bool) -> list[Any]:
        shown = [row.get(column) for row in self.rows for column in self.text_columns]
        return [*super()._displayed_contents(only_visible=only_visible), *shown]


class PagedFeed(ABC):
    """The table, the total above it, and the live panels that fill both.

    ``total_slot`` is where the count goes; ``on_open(row_id)`` runs when a row is
    clicked. A subclass names the table and its total (:attr:`testid`, :attr:`empty`,
    :attr:`page_name`, :attr:`total_testid`), says how the total is counted
    (:meth:`_count`) and shown (:meth:`_show_total`), and what a page holds
    (:meth:`_page_source`, :meth:`_show_page`).
    """

    testid: ClassVar[str]
    """The table's ``data-testid`` and mark."""
    empty: ClassVar[str]
    """What the table says when no row matches."""
    page_name: ClassVar[str]
    """The name of the live panel that reads a page."""
    total_testid: ClassVar[str]
    """The total's ``data-testid`` and mark."""

    def __init__(
        self,
        web: WebApp,
        total_slot: ui.element,
        on_open: Callable[[str], object],
        table: PagedTable,
    ) -> None:
        self.web = web
        self._total_slot = total_slot
        self.table = table
        self.table.classes("w-full").props(
            f'{TABLE_PROPS} data-testid="{self.testid}" no-data-label="{self.empty}" '
        )
        self.table.mark(self.testid)
        self.table.on("request", self._requested, ["pagination"])
        self.table.on("rowClick", lambda e: on_open(e.args[1]["id"]), [[], ["id"], None])
        self._feeders = ui.element("div").classes("w-full")

    @abstractmethod
    def _count(self) -> None:
        """Show the total in the total's slot, live (a panel that calls :meth:`_counted`)."""

    @abstractmethod
    def _show_total(self, total: int) -> None:
        """Show ``total``, the rows the filter selects (with :meth:`_show_count`)."""

    def _show_count(self, count: int, noun: str) -> None:
        """Show ``count`` and what it counts (``noun``)."""
        with ui.row().classes("items-baseline gap-1"):
            number = ui.label(str(count)).classes("text-h6")
            number.props(f'data-testid="{self.total_testid}"').mark(self.total_testid)
            ui.label(noun).classes("text-grey-8")

    @abstractmethod
    def _page_source(self) -> Any:
        """The live query of the current page's rows."""

    @abstractmethod
    def _show_page(self, rows: list[Row]) -> None:
        """Put the current page's rows in the table."""

    def _asked(self, asked: Mapping[str, Any]) -> dict[str, Any]:
        """What of a table's request for another page to follow: the page and its size."""
        return asked_page(asked)

    def _requested(self, event: GenericEventArguments) -> None:
        self._set_pagination(**self._asked(event.args["pagination"]))
        self._feed(count=False)

    def _set_pagination(self, **changes: Any) -> None:
        self.table.pagination = {**self.table.pagination, **changes}

    def _feed(self, *, count: bool) -> None:
        if count:
            self._total_slot.clear()
            with self._total_slot:
                self._count()
        self._feeders.clear()
        with self._feeders:
            LivePanel(self.page_name, self._page_source, self._show_page)

    def _counted(self, rows: list[Row]) -> None:
        total = int(rows[0].n)
        self._show_total(total)
        if settle_total(self.table, total):
            self._feed(count=False)
