"""The explorer's table: one page of memories at a time, from the server.

The browser holds only the page it shows. Two live panels feed the table: one counts
the memories the filter selects (the pagination's total, and ``memory-total``), one
reads the current page with LIMIT/OFFSET. Paging or sorting replaces the page's panel;
a new filter replaces both. While a search decides what shows, the table pages through
its hits instead, still reading each page live (an edited or deleted hit updates).

Newest first by default: the index on (persona, occurred_at) gives that page without
sorting every memory of the persona.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from nicegui import ui

from pjai.app.display import shown_text
from pjai.app.reads import memories as reads
from pjai.schema.selection import MemoryFilter
from pjai.schema.types import as_datetime
from pjai.sql.repositories import MemoryOrder
from pjai.store import Row
from pjai.web.app import WebApp
from pjai.web.live import LivePanel
from pjai.web.paging import asked_page, badge_cell, window
from pjai.web.views.paged_feed import PagedFeed, PagedTable

__all__ = ["COLUMNS", "SORTABLE", "TIER_COLOURS", "MemoryTable", "TableFeed", "row_of"]

SORTABLE: tuple[MemoryOrder, ...] = ("importance", "occurred_at", "created_at", "access_count")
"""The columns the table sorts by, on the server."""

COLUMNS: list[dict[str, Any]] = [
    # A long name is cut at the cell's end, not pushing the other columns away.
    {
        "name": "name",
        "label": "Name",
        "field": "name",
        "align": "left",
        "classes": "ellipsis",
        "style": "max-width: 28rem",
    },
    {"name": "type", "label": "Type", "field": "type", "align": "left"},
    {"name": "tier", "label": "Tier", "field": "tier", "align": "left"},
    {"name": "importance", "label": "Importance", "field": "importance", "sortable": True},
    {"name": "tags", "label": "Tags", "field": "tags", "align": "left"},
    {"name": "occurred_at", "label": "Occurred (UTC)", "field": "occurred_at", "sortable": True},
    {"name": "access_count", "label": "Opened", "field": "access_count", "sortable": True},
    {"name": "state", "label": "", "field": "state", "align": "left"},
]


TIER_COLOURS = {"hot": "deep-orange", "warm": "amber-8", "cold": "light-blue-8"}
"""The colour of each tier's badge."""


def row_of(row: Row) -> dict[str, Any]:
    """A memory's row as the table shows it (plain values: the browser gets JSON)."""
    state = (
        "deleted"
        if row.deleted_at is not None
        else "archived"
        if row.archived_at is not None
        else "pinned"
        if row.pinned
        else ""
    )
    return {
        "id": row.id,
        "name": shown_name(row.name, row.content),
        "type": row.type,
        "tier": row.tier,
        "importance": f"{row.importance:.2f}",
        "tags": shown_text(", ".join(row.tags or ())),
        "occurred_at": as_datetime(row.occurred_at).strftime("%Y-%m-%d %H:%M"),
        "access_count": row.access_count,
        "state": state,
    }


def shown_name(name: str, content: str, limit: int = 80) -> str:
    """A memory's name as the views show it: a memory without one (`pjai memory add
    TEXT`, or a name cleared) shows the start of its text."""
    if name.strip():
        return shown_text(name)
    flat = shown_text(" ".join(content.split()))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class MemoryTable(PagedTable):
    """A table whose rows' names count as its text (what a simulated user sees)."""

    text_columns = ("name",)


class TableFeed(PagedFeed):
    """The explorer's memories (or a search's hits), a page at a time, and their total."""

    testid = "explorer-table"
    empty = "No memories match"
    page_name = "memory page"
    total_testid = "memory-total"

    def __init__(
        self, web: WebApp, total_slot: ui.element, on_open: Callable[[str], object]
    ) -> None:
        self._where: MemoryFilter | None = None
        self._hits: list[str] | None = None
        self._hits_deleted = False
        table = MemoryTable(COLUMNS, "id", sortBy="occurred_at", descending=True)
        table.add_slot("body-cell-tier", badge_cell(TIER_COLOURS))
        super().__init__(web, total_slot, on_open, table)

    # -- what shows -----------------------------------------------------------------

    def show_filter(self, where: MemoryFilter) -> None:
        """Page through the memories ``where`` selects, from the first page."""
        self._where, self._hits = where, None
        self._set_pagination(page=1)
        self._feed(count=True)

    def show_hits(self, ids: Sequence[str], *, deleted: bool) -> None:
        """Page through a search's hits, best first."""
        self._hits = list(ids)
        self._hits_deleted = deleted
        self._set_pagination(page=1, rowsNumber=len(self._hits))
        self._feed(count=True)

    # -- feeding ----------------------------------------------------------------------

    def _asked(self, asked: Mapping[str, Any]) -> dict[str, Any]:
        sort = asked.get("sortBy") or "occurred_at"
        return {
            **asked_page(asked),
            "sortBy": sort if sort in SORTABLE else "occurred_at",
            "descending": bool(asked.get("descending", True)),
        }

    def _count(self) -> None:
        if self._hits is not None:
            self._show_count(len(self._hits), "found")
            return
        assert self._where is not None
        counting = partial(reads.count, self.web.manager, self._where)
        LivePanel("memory count", counting, self._counted).classes("w-auto")

    def _show_total(self, total: int) -> None:
        self._show_count(total, "memories" if total != 1 else "memory")

    def _page_source(self) -> Any:
        p = self.table.pagination
        size, offset = window(self.table)
        if self._hits is not None:
            ids = self._hits[offset : offset + size]
            return reads.by_ids(self.web.manager, ids, deleted=self._hits_deleted)
        assert self._where is not None
        return reads.page(
            self.web.manager,
            self._where,
            order=p["sortBy"],
            descending=bool(p["descending"]),
            limit=size,
            offset=offset,
        )

    def _show_page(self, rows: list[Row]) -> None:
        shown = [row_of(r) for r in rows]
        if self._hits is not None:
            rank = {memory_id: i for i, memory_id in enumerate(self._hits)}
            shown.sort(key=lambda r: rank[r["id"]])
        self.table.rows = shown
        self.table.update()
