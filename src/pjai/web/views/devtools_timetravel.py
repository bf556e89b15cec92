"""The devtools time travel tab: choose a position of the event log, see the state as
of that event (row counts, a table's first rows) and what changed from there to another
position (by default: now).

The state is a replay of the log (:mod:`pjai.store.timetravel`), which takes a while
on a big log: it runs on time travel's own threads (:mod:`pjai.web.heavy`), one at a
time per tab, and a position chosen while one runs is taken up when it ends (only the
newest). A replay refused because those threads are busy says so, with a button to try
again. The log's head is a live query: each commit moves the range and, the diff going
to "now" by default, recomputes it.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from nicegui import background_tasks, ui

from pjai.app.reads import devtools as reads
from pjai.errors import BusyError
from pjai.store import Row
from pjai.store.timetravel import ChangedRow, StateDiff, TableDiff
from pjai.web.app import WebApp
from pjai.web.live import LivePanel, failure_text
from pjai.web.views.devtools_console import shown, table_of

__all__ = ["SHOWN_PER_KIND", "TimeTravel"]

log = logging.getLogger(__name__)

SHOWN_PER_KIND = 20
"""The diff lists this many added, removed and changed rows of each table."""

_TEXT = 60
"""Values in the diff are cut to this many characters."""


class TimeTravel(ui.column):
    """The time travel tab of one page; it frees its replayed state when deleted."""

    def __init__(self, web: WebApp) -> None:
        super().__init__()
        self.classes("w-full gap-3")
        self._manager = web.manager
        self._replays = web.time_travel
        self._tab = ui.context.client.id  # one replay at a time, across visits
        self._past = reads.PastStates(web.manager)
        self._head = 0
        self._position: int | None = None
        self._running = False
        self._again = False
        tables = reads.table_names(self._manager)
        with self:
            with ui.card().classes("w-full"), ui.row().classes("w-full items-center gap-x-4"):
                self._number = (
                    ui.number("Position", value=0, min=0, precision=0, step=1)
                    .classes("w-32")
                    .props('outlined dense data-testid="timetravel-position"')
                    .mark("timetravel-position")
                )
                self._slider = ui.slider(min=0, max=1, value=0).classes("grow min-w-0 basis-48")
                self._event = (
                    ui.label()
                    .classes("text-body2")
                    .props('data-testid="timetravel-event"')
                    .mark("timetravel-event")
                )
                LivePanel("log head", partial(reads.log_head, self._manager), self._head_moved)
            # Side by side on a wide screen, the counts above the table on a narrow one.
            with ui.row().classes("w-full gap-3 items-stretch flex-col md:flex-row no-wrap"):
                with ui.card().classes("w-full md:w-64 shrink-0"):
                    ui.label("Rows per table").classes("text-subtitle2")
                    self._counts = (
                        ui.column()
                        .classes("w-full gap-0")
                        .props('data-testid="timetravel-counts"')
                        .mark("timetravel-counts")
                    )
                with ui.card().classes("w-full md:w-auto grow min-w-0"):
                    with ui.row().classes("items-center gap-3"):
                        ui.label("Table").classes("text-subtitle2")
                        self._table = (
                            ui.select(tables, value=tables[0])
                            .props('dense outlined data-testid="timetravel-table"')
                            .mark("timetravel-table")
                        )
                        ui.label(f"first {reads.TABLE_PAGE} rows").classes(
                            "text-caption text-grey-7"
                        )
                    self._rows = ui.column().classes("w-full overflow-auto")
            with ui.card().classes("w-full"):
                with ui.row().classes("items-center gap-3"):
                    ui.label("Changes from this position to").classes("text-subtitle2")
                    self._compare = (
                        ui.number("position", min=0, precision=0, step=1)
                        .classes("w-32")
                        .props('outlined dense clearable data-testid="timetravel-compare"')
                        .mark("timetravel-compare")
                    )
                    ui.label("(empty: now)").classes("text-caption text-grey-7")
                self._diff = (
                    ui.column()
                    .classes("w-full gap-2")
                    .props('data-testid="timetravel-diff"')
                    .mark("timetravel-diff")
                )
        self._number.on_value_change(lambda e: self._choose(e.value))
        self._slider.on_value_change(lambda e: self._choose(e.value))
        self._table.on_value_change(lambda _: self._refresh())
        self._compare.on_value_change(lambda _: self._refresh())

    def _handle_delete(self) -> None:
        self._past.close()
        super()._handle_delete()

    # -- choosing a position --------------------------------------------------------

    def _head_moved(self, rows: list[Row]) -> None:
        self._head = int(rows[0].head) if rows else 0
        ui.label(f"head: event {self._head}").classes("text-caption text-grey-7")
        # Numbers, not props: the number field compares its value with its max.
        self._slider.props["max"] = max(self._head, 1)
        self._number.max = self._head
        if self._position is None:
            self._choose(self._head)
        else:
            self._refresh()

    def _choose(self, value: Any) -> None:
        if value is None:
            return
        position = min(max(int(value), 0), self._head)
        moved = position != self._position
        self._position = position
        # Both controls show the position taken, also when one was set beyond the head.
        self._number.value = position
        self._slider.value = position
        if moved:
            self._refresh()

    # -- reading the state, off the event loop ----------------------------------------

    def _refresh(self) -> None:
        if self._position is None:
            return
        if self._running:
            self._again = True
            return
        self._running = True
        background_tasks.create(self._read_until_current(), name="time travel")

    async def _read_until_current(self) -> None:
        try:
            while True:
                self._again = False
                await self._read_once()
                if not self._again or self._counts.is_deleted:
                    return
        finally:
            self._running = False

    async def _read_once(self) -> None:
        position = self._position or 0
        table = str(self._table.value)
        try:
            compare = None if self._compare.value is None else int(self._compare.value)
        except (TypeError, ValueError, OverflowError):  # a page script set it so
            self._failed(f"compare with position {self._compare.value!r}: give a whole number")
            return
        try:
            replay = partial(self._past.view, position, table, compare)
            state = await self._replays.run(replay, tab=self._tab)
        except Exception as exc:
            if not isinstance(exc, BusyError):
                log.warning("time travel to %s failed", position, exc_info=exc)
            if not self._counts.is_deleted:
                self._failed(failure_text(exc), again=True)
            return
        if self._counts.is_deleted:
            return
        event = state.event
        self._event.text = (
            f"event {event.position}: {event.name} at {event.at:%Y-%m-%d %H:%M:%S}"
            if event is not None
            else f"position {position}: before the first event"
        )
        self._show_state(state)
        self._show_diff(state.changes)

    def _failed(self, text: str, *, again: bool = False) -> None:
        for area in (self._counts, self._rows, self._diff):
            area.clear()
        with self._counts:
            ui.label(text).classes("text-negative").props('data-testid="timetravel-error"').mark(
                "timetravel-error"
            )
            if again:
                ui.button("Try again", icon="refresh", on_click=self._refresh).props(
                    'flat dense no-caps data-testid="timetravel-retry"'
                ).mark("timetravel-retry")

    # -- drawing ------------------------------------------------------------------------

    def _show_state(self, state: reads.StateAt) -> None:
        self._counts.clear()
        with self._counts:
            for name, count in state.counts.items():
                with ui.row().classes("w-full justify-between") as row:
                    row.props["data-testid"] = f"count-{name}"
                    ui.label(name)
                    ui.label(str(count)).classes("font-mono")
        self._rows.clear()
        with self._rows:
            if state.rows:
                table_of(state.columns, state.rows, testid="timetravel-rows")
            else:
                ui.label(f"{state.table} is empty at this position").classes("text-grey-7")

    def _show_diff(self, changes: StateDiff) -> None:
        self._diff.clear()
        with self._diff:
            ui.label(f"from event {changes.before} to event {changes.after}").classes(
                "text-caption text-grey-7"
            )
            if changes.empty:
                ui.label("no change: the two states are equal").classes("text-grey-7")
            for found in changes.tables.values():
                _table_changes(found)


def _table_changes(found: TableDiff) -> None:
    summary = (
        f"{len(found.added)} added, {len(found.removed)} removed, {len(found.changed)} changed"
    )
    with ui.expansion(f"{found.table}: {summary}", value=True).classes("w-full") as table:
        table.props("dense")
        table.props["data-table"] = found.table
        for values in found.added[:SHOWN_PER_KIND]:
            _row_line("added", "text-positive", _key(found, values), _values(found, values))
        for values in found.removed[:SHOWN_PER_KIND]:
            _row_line("removed", "text-negative", _key(found, values), _values(found, values))
        for changed in found.changed[:SHOWN_PER_KIND]:
            _row_line("changed", "text-primary", _changed_key(found, changed), _changes(changed))
        hidden = sum(
            max(0, len(kind) - SHOWN_PER_KIND)
            for kind in (found.added, found.removed, found.changed)
        )
        if hidden:
            ui.label(f"and {hidden} more rows").classes("text-caption text-grey-7")


def _row_line(kind: str, colour: str, key: str, detail: str) -> None:
    with ui.row().classes("w-full no-wrap items-baseline gap-2"):
        ui.label(kind).classes(f"{colour} text-caption w-16 shrink-0")
        ui.label(key).classes("font-mono shrink-0")
        ui.label(detail).classes("text-caption text-grey-8 ellipsis")


def _key(found: TableDiff, values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={shown(values.get(k), _TEXT)}" for k in found.key_columns)


def _changed_key(found: TableDiff, changed: ChangedRow) -> str:
    return ", ".join(
        f"{k}={shown(v, _TEXT)}" for k, v in zip(found.key_columns, changed.key, strict=False)
    )


def _values(found: TableDiff, values: dict[str, Any]) -> str:
    return "; ".join(
        f"{c}: {shown(v, _TEXT)}"
        for c, v in values.items()
        if v is not None and c not in found.key_columns
    )


def _changes(changed: ChangedRow) -> str:
    return "; ".join(
        f"{c}: {shown(old, _TEXT)} → {shown(new, _TEXT)}"
        for c, (old, new) in changed.changes.items()
    )
