"""The audit trail's table: one page of events at a time, newest first, from the server.

As in the memory explorer, the browser holds only the page it shows: one live panel
counts the events the filter selects (the pagination's total, and ``audit-total``),
one reads the current page with LIMIT/OFFSET. Paging replaces the page's panel; a new
filter replaces both.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import msgspec
from nicegui import ui

from pjai.app.display import shown_text
from pjai.app.reads import audit as reads
from pjai.app.reads.audit import AuditFilter
from pjai.schema.types import from_iso
from pjai.store import Row
from pjai.web.app import WebApp
from pjai.web.live import LivePanel
from pjai.web.paging import badge_cell, window
from pjai.web.views.paged_feed import PagedFeed, PagedTable

__all__ = ["COLUMNS", "OUTCOME_COLOURS", "AuditTable", "EventFeed", "summary"]

COLUMNS: list[dict[str, Any]] = [
    {"name": "position", "label": "#", "field": "position", "align": "right"},
    {"name": "at", "label": "Time (UTC)", "field": "at", "align": "left"},
    {"name": "name", "label": "Event", "field": "name", "align": "left"},
    {"name": "persona", "label": "Persona", "field": "persona", "align": "left"},
    {"name": "client", "label": "Client", "field": "client", "align": "left"},
    {"name": "outcome", "label": "Outcome", "field": "outcome", "align": "left"},
    {"name": "summary", "label": "Payload", "field": "summary", "align": "left"},
]

OUTCOME_COLOURS = {"confirmed": "positive", "pending": "amber-8", "rejected": "negative"}
"""The colour of each outcome's badge."""

_SUMMARY_CELL = (
    '<q-td :props="props" class="text-grey-8" style="max-width: 28rem; overflow: hidden; '
    'text-overflow: ellipsis">{{ props.value }}</q-td>'
)

# A long persona name is cut to the column; the cell's tooltip has all of it.
_PERSONA_CELL = (
    '<q-td :props="props" :title="props.value" style="max-width: 12rem; overflow: hidden; '
    'text-overflow: ellipsis">{{ props.value }}</q-td>'
)

_SUMMARY_CHARS = 90


def summary(args: str, limit: int = _SUMMARY_CHARS) -> str:
    """A line saying what an event's arguments hold: ``field: value`` pairs, ids last
    (the persona left out, as its own column shows it), cut at ``limit`` characters."""
    try:
        data = msgspec.json.decode(args)
    except msgspec.DecodeError:
        data = args
    if not isinstance(data, dict):
        text = str(data)
    else:
        parts = []
        for key, value in sorted(data.items(), key=lambda item: item[0].endswith("_id")):
            if key == "persona_id" or value in (None, "", [], {}):
                continue  # the persona has its column; empty fields say nothing
            shown = value if isinstance(value, str) else msgspec.json.encode(value).decode()
            parts.append(f"{key}: {shown_text(' '.join(shown.split()))}")
        text = ", ".join(parts)
    text = shown_text(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _persona_of(args: str) -> str | None:
    try:
        data = msgspec.json.decode(args)
    except msgspec.DecodeError:
        return None
    value = data.get("persona_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


class AuditTable(PagedTable):
    """A table whose event names and summaries count as its text (what a simulated
    user sees)."""

    text_columns = ("name", "summary")


class EventFeed(PagedFeed):
    """The audit trail's events, a page at a time, and their total."""

    testid = "audit-table"
    empty = "No events match"
    page_name = "event page"
    total_testid = "audit-total"

    def __init__(
        self, web: WebApp, total_slot: ui.element, on_open: Callable[[str], object]
    ) -> None:
        self._where = AuditFilter()
        self._names: dict[str, str] = {}
        table = AuditTable(COLUMNS, "key")
        table.add_slot("body-cell-outcome", badge_cell(OUTCOME_COLOURS))
        table.add_slot("body-cell-persona", _PERSONA_CELL)
        table.add_slot("body-cell-summary", _SUMMARY_CELL)
        super().__init__(web, total_slot, on_open, table)

    def show(self, where: AuditFilter) -> None:
        """Page through the events ``where`` selects, from the first page."""
        self._where = where
        self._set_pagination(page=1)
        self._feed(count=True)

    # -- feeding ----------------------------------------------------------------------

    def _count(self) -> None:
        counting = partial(reads.count, self.web.manager, self._where)
        LivePanel("event count", counting, self._counted).classes("w-auto")

    def _show_total(self, total: int) -> None:
        self._show_count(total, "events" if total != 1 else "event")

    def _page_source(self) -> Any:
        size, offset = window(self.table)
        return reads.page(self.web.manager, self._where, limit=size, offset=offset)

    def _show_page(self, rows: list[Row]) -> None:
        personas = [_persona_of(r.args) for r in rows]
        if any(p is not None and p not in self._names for p in personas):
            self._names = reads.persona_names(self.web.manager)  # a persona new since
        self.table.rows = [
            _row_of(r, p and self._names.get(p, p)) for r, p in zip(rows, personas, strict=True)
        ]
        self.table.update()


def _short(client_id: str) -> str:
    # Client ids are UUIDv7: ids made about the same time share their head, not their tail.
    return client_id if len(client_id) <= 12 else "…" + client_id[-8:]


def _row_of(row: Row, persona: str | None) -> dict[str, Any]:
    """An event's row as the table shows it (plain values: the browser gets JSON)."""
    position = f"e{row.global_seq}" + (f"+{row.client_seq}" if row.client_seq else "")
    return {
        "key": f"{row.event_id}/{row.status}",  # a rejected event may also be logged
        "id": row.event_id,
        "position": position,
        "at": from_iso(row.at).strftime("%Y-%m-%d %H:%M:%S"),
        "name": row.name,
        "persona": shown_text(persona or ""),
        "client": _short(row.client_id),
        "outcome": row.status,
        "summary": summary(row.args),
    }
