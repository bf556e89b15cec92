"""Devtools: time travel through the event log, a read-only SQL console, the live
queries, the event log with sync status, the sync positions and flags, and export and
import of archives.

Each tab is built by its own module; all of them read the reactive store, so with the
store off the page says so instead, and keeps the flags, which switch it back on.
"""

from __future__ import annotations

from collections.abc import Callable

from nicegui import ui

from pjai.app.reads import devtools as reads
from pjai.web.app import WebApp
from pjai.web.live import follow_the_store
from pjai.web.views import (
    devtools_archive,
    devtools_console,
    devtools_system,
    devtools_timetravel,
)
from pjai.web.views.view import View

__all__ = ["VIEW", "build"]

_TABS: dict[str, Callable[[WebApp], object]] = {
    "Time travel": devtools_timetravel.TimeTravel,
    "SQL console": devtools_console.console,
    "Live queries": devtools_system.live_queries,
    "Event log": devtools_system.event_log,
    "Sync and flags": devtools_system.sync_and_flags,
    "Export and import": devtools_archive.archives,
}
"""Each tab's title, and what fills it."""


def build(web: WebApp) -> None:
    """The devtools page: one tab per tool; it rebuilds when the store is switched off
    or on (the tools read the store that is open)."""
    with ui.column().classes("w-full gap-2"):
        ui.label("Devtools").classes("text-h5")
        content = ui.column().classes("w-full gap-2")
        follow_the_store(content, lambda: web.manager.store, lambda: _tools(web))


def _tools(web: WebApp) -> None:
    if web.manager.store is None:
        ui.label(reads.STORE_OFF).classes("w-full bg-amber-1 text-grey-10 q-pa-sm rounded").props(
            'data-testid="store-off"'
        ).mark("store-off")
        devtools_system.flags(web)
        return
    with ui.tabs().classes("w-full").props("align=left") as tabs:
        made = {title: ui.tab(title) for title in _TABS}
    with ui.tab_panels(tabs, value=made["Time travel"]).classes("w-full").props("keep-alive"):
        for title, fill in _TABS.items():
            with ui.tab_panel(made[title]):
                fill(web)


VIEW = View("/devtools", "Devtools", "build", build)
