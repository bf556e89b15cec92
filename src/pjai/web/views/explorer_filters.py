"""The explorer's filter and search bar.

The controls edit a :class:`~pjai.web.views.explorer_selection.Selection`; each change
hands the new selection to the explorer, and :meth:`FilterBar.show` puts a selection
made elsewhere (a bookmark, a preset, the timeline) back into the controls.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from functools import partial
from typing import cast, get_args

from nicegui import ui

from pjai.app.reads import memories as reads
from pjai.memory.search import Method
from pjai.schema.tables import TIERS
from pjai.web.app import WebApp
from pjai.web.views.explorer_selection import Selection, format_time
from pjai.web.views.time_field import read_time, time_field

__all__ = ["FILTER_LABELS", "FilterBar"]

Apply = Callable[[Selection], Awaitable[None]]

_METHODS: tuple[Method, ...] = get_args(Method)

FILTER_LABELS = {
    "filters.tiers": "Tiers",
    "filters.types": "Types",
    "filters.tags": "Tags",
    "filters.importance_min": "Importance",
    "filters.importance_max": "Importance",
    "filters.hours": "Hours",
    "time_from": "From (UTC)",
    "time_to": "To (UTC)",
}
"""Each field of a bookmark (which saves the filter) as this bar labels its control."""


class FilterBar:
    """Search box, method, and the filter's controls; ``apply`` gets each change."""

    def __init__(self, web: WebApp, persona_id: str, apply: Apply) -> None:
        self._apply = apply
        self._shown = Selection()
        self._quiet = False
        with ui.card().classes("w-full gap-2").props("flat bordered"):
            with ui.row().classes("w-full items-center gap-2"):
                # Its own line on a narrow screen, the method and the button below it.
                self.text = (
                    ui.input(placeholder="Search memories: words, or a question")
                    .props('dense outlined clearable data-testid="search-text"')
                    .classes("grow min-w-[14rem]")
                )
                self.text.on("keydown.enter", self._search)
                self.text.on("clear", self._search)
                self.method = ui.toggle(list(_METHODS), value="keyword").props(
                    'dense no-caps data-testid="search-method"'
                )
                ui.button("Search", icon="search", on_click=self._search).props(
                    'unelevated data-testid="search-button"'
                )
            self.search_status = ui.label("").classes("text-caption")
            self.search_status.props('data-testid="search-status"').mark("search-status")
            self.search_status.set_visibility(False)
            with ui.row().classes("w-full items-center gap-3"):
                self.tiers = self._select(
                    FILTER_LABELS["filters.tiers"], list(TIERS), "filter-tiers"
                )
                self.types = self._select(FILTER_LABELS["filters.types"], [], "filter-types")
                self.tags = (
                    ui.input_chips(
                        FILTER_LABELS["filters.tags"],
                        new_value_mode="add-unique",
                        on_change=self._changed,
                    )
                    .props('dense outlined data-testid="filter-tags"')
                    .classes("min-w-[12rem] grow")
                )
                with ui.column().classes("gap-0 w-[13rem] q-px-sm"):
                    self.importance_label = ui.label("Importance 0.00 to 1.00").classes(
                        "text-caption text-grey-8"
                    )
                    self.importance = ui.range(
                        min=0, max=1, step=0.05, value={"min": 0, "max": 1}, on_change=self._changed
                    ).props('dense data-testid="filter-importance"')
            with ui.row().classes("w-full items-center gap-3"):
                self.time_from = time_field(
                    FILTER_LABELS["time_from"], "filter-from", self._changed
                )
                self.time_to = time_field(FILTER_LABELS["time_to"], "filter-to", self._changed)
                self.hours = ui.chip("", icon="schedule", removable=True)
                self.hours.on("remove", self._drop_hours)
                self.hours.set_visibility(False)
                self.deleted = ui.switch("Deleted too", on_change=self._changed).props(
                    'dense data-testid="filter-deleted"'
                )
                ui.space()
                ui.button("Clear", icon="filter_alt_off", on_click=self._clear).props(
                    'flat dense no-caps data-testid="filter-clear"'
                )
        # The persona's types are read when the list opens: reading them scans every
        # memory, too much to repeat after each commit.
        self.types.on("popup-show", partial(self._types_known, web, persona_id))

    # -- building ------------------------------------------------------------------

    def _select(self, label: str, options: list[str], testid: str) -> ui.select:
        return (
            ui.select(options, label=label, multiple=True, on_change=self._changed)
            .props(f'dense outlined use-chips clearable data-testid="{testid}"')
            .classes("min-w-[9rem]")
        )

    def _types_known(self, web: WebApp, persona_id: str) -> None:
        chosen = list(self.types.value or [])
        known = reads.types(web.manager, persona_id)
        self.types.set_options(sorted(set(known) | set(chosen)), value=chosen)

    # -- reading the controls --------------------------------------------------------

    def read(self) -> Selection:
        """The selection the controls show now (a wrong time is an error on its input)."""
        span = self.importance.value or {"min": 0, "max": 1}
        start = read_time(self.time_from, end=False, fallback=self._shown.occurred_from)
        end = read_time(self.time_to, end=True, fallback=self._shown.occurred_to)
        if start is not None and end is not None and end < start:
            # Nothing can lie in that span: say so, rather than show none without a word.
            self.time_to.props["error"] = True
            self.time_to.props["error-message"] = "before From: nothing happened in between"
            self.time_to.update()
        return replace(
            self._shown,
            tiers=tuple(self.tiers.value or ()),
            types=tuple(self.types.value or ()),
            tags=tuple(self.tags.value or ()),
            importance=(float(span["min"]), float(span["max"])),
            occurred_from=start,
            occurred_to=end,
            include_deleted=bool(self.deleted.value),
            text=(self.text.value or "").strip(),
            method=cast(Method, self.method.value),
        )

    async def _changed(self, *_: object) -> None:
        if self._quiet:
            return
        span = self.importance.value or {"min": 0, "max": 1}
        self.importance_label.text = f"Importance {span['min']:.2f} to {span['max']:.2f}"
        await self._hand_over(replace(self.read(), text=self._shown.text))

    async def _search(self, *_: object) -> None:
        await self._hand_over(self.read())

    async def _drop_hours(self) -> None:
        await self._hand_over(replace(self.read(), hours=None))

    async def _clear(self) -> None:
        await self._hand_over(Selection())

    async def _hand_over(self, selection: Selection) -> None:
        if selection != self._shown:
            self.show(selection)
            await self._apply(selection)

    # -- showing a selection -----------------------------------------------------------

    def refused(self, kept: Selection) -> None:
        """The selection handed over was not taken (its search was refused) and
        ``kept`` stays: the controls keep what was typed, so that the same search can be
        asked again."""
        self._shown = kept

    def show(self, selection: Selection) -> None:
        """Put ``selection`` into the controls (without handing it back)."""
        self._shown = selection
        self._quiet = True
        try:
            self.text.value = selection.text
            self.method.value = selection.method
            self.tiers.value = list(selection.tiers)
            if set(selection.types) - set(self.types.options):
                options = sorted(set(self.types.options) | set(selection.types))
                self.types.set_options(options)
            self.types.value = list(selection.types)
            self.tags.value = list(selection.tags)
            low, high = selection.importance
            self.importance.value = {"min": low, "max": high}
            self.importance_label.text = f"Importance {low:.2f} to {high:.2f}"
            self.time_from.value = format_time(selection.occurred_from)
            self.time_to.value = format_time(selection.occurred_to, end=True)
            self.deleted.value = selection.include_deleted
            if selection.hours:
                self.hours.text = f"{selection.hours[0]:02d}:00 to {selection.hours[1]:02d}:00 UTC"
            self.hours.set_visibility(bool(selection.hours))
        finally:
            self._quiet = False

    @property
    def said(self) -> tuple[str, bool]:
        """What the search line says now, and whether it is an error."""
        return self.search_status.text, "text-negative" in self.search_status.classes

    def searched(self, message: str, *, error: bool = False) -> None:
        """Say how the search went (an empty message hides the line)."""
        self.search_status.text = message
        self.search_status.set_visibility(bool(message))
        self.search_status.classes(
            replace="text-caption " + ("text-negative" if error else "text-grey-8")
        )
