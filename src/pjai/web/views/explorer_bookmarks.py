"""The explorer's bookmarks: the persona's saved selections, the presets, and saving the
current selection as a new bookmark.

Opening a bookmark or a preset puts its selection in place; a preset (today, this week,
working hours, hot memories) is only applied, and saved if the user saves it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

from nicegui import ui

from pjai.app.display import shown_text
from pjai.app.reads import memories as reads
from pjai.errors import PjaiError
from pjai.memory.timeline import PRESETS, preset
from pjai.store import Row
from pjai.web.app import WebApp
from pjai.web.live import LivePanel
from pjai.web.views.explorer_filters import FILTER_LABELS
from pjai.web.views.explorer_selection import Selection
from pjai.web.views.forms import form_error

__all__ = ["BookmarkBar"]

Apply = Callable[[Selection], Awaitable[None]]

_PRESET_TITLES = {
    "today": "Today",
    "this_week": "This week",
    "working_hours": "Working hours",
    "hot_memories": "Hot memories",
}

_LABELS = {"name": "Name", "description": "Description", **FILTER_LABELS}
"""A new bookmark's fields as the page names them: in this dialog, or the filter bar."""

_SHORT = 24
"""A bookmark name longer than this may be cut on its chip: its tooltip names it."""


class BookmarkBar:
    """Bookmark chips, the presets menu and the save button; ``current()`` is the
    selection to save, ``apply`` gets the one opened."""

    def __init__(
        self, web: WebApp, persona_id: str, current: Callable[[], Selection], apply: Apply
    ) -> None:
        self.web = web
        self.persona_id = persona_id
        self._current = current
        self._apply = apply
        with ui.row().classes("w-full items-center gap-2"):
            ui.icon("bookmarks", color="primary")
            with (
                ui.button("Presets", icon="auto_awesome").props(
                    'flat dense no-caps data-testid="presets"'
                ),
                ui.menu(),
            ):
                for name in PRESETS:
                    ui.menu_item(
                        _PRESET_TITLES.get(name, name), on_click=partial(self._preset, name)
                    ).props(f'data-testid="preset-{name}"')
            LivePanel(
                "bookmarks", partial(reads.bookmarks, web.manager, persona_id), self._chips
            ).classes("grow min-w-0", remove="w-full")
            ui.button("Save as bookmark", icon="bookmark_add", on_click=self._ask_name).props(
                'flat dense no-caps data-testid="bookmark-save"'
            )
        self._naming = ui.dialog()

    def _chips(self, rows: list[Row]) -> None:
        with ui.row().classes("items-center gap-1 min-w-0"):
            if not rows:
                ui.label("No bookmarks yet").classes("text-caption text-grey-7")
            for row in rows:
                name = shown_text(row.name)
                chip = ui.chip(
                    color=row.colour,
                    text_color="white",
                    removable=True,
                    on_click=partial(self._open, row),
                ).props('dense clickable data-testid="bookmark"')
                # As a label, a long name is cut with an ellipsis (the tooltip has it
                # all) and the remove button stays on the chip.
                chip.props["label"] = name  # values: never parsed as props
                chip.props["data-bookmark"] = row.id
                chip.classes("max-w-64")
                about = shown_text(row.description) if row.description else "open this bookmark"
                with chip:
                    tip = ui.tooltip(f"{name}: {about}" if len(name) > _SHORT else about)
                    tip.classes("wrap-anywhere max-w-[90vw]")
                chip.on("remove", partial(self._remove, row.id))

    async def _open(self, row: Row) -> None:
        await self._apply(Selection.of_bookmark(row))

    def _remove(self, bookmark_id: str) -> None:
        self.web.services.bookmarks.delete(bookmark_id)

    async def _preset(self, name: str) -> None:
        event = preset(name, self.persona_id)
        await self._apply(Selection.of_bookmark(event))

    def _ask_name(self) -> None:
        self._naming.clear()
        with self._naming, ui.card().classes("w-96"):
            ui.label("Save the current filter").classes("text-h6")
            name = ui.input("Name").props('autofocus data-testid="bookmark-name"')
            description = ui.input("Description (optional)")

            def save() -> None:
                if not (name.value or "").strip():
                    name.props["error"] = True
                    name.props["error-message"] = "give the bookmark a name"
                    return
                try:
                    self.web.services.bookmarks.create(
                        self.persona_id,
                        name.value.strip(),
                        description=description.value or "",
                        **self._current().bookmark(),
                    )
                except PjaiError as exc:
                    ui.notify(form_error(exc, _LABELS), type="negative", multi_line=True)
                    return
                ui.notify(f"Bookmarked “{shown_text(name.value.strip())}”", type="positive")
                name.value = ""  # a second click on Save, queued already, saves nothing
                self._naming.close()

            name.on("keydown.enter", save)
            with ui.row().classes("w-full justify-end"):
                ui.button("Cancel", on_click=self._naming.close).props("flat")
                ui.button("Save", icon="bookmark_add", on_click=save).props(
                    'unelevated data-testid="bookmark-confirm"'
                )
        self._naming.open()
