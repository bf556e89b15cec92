"""The dashboard: key figures, memory health, charts and the health of the system, or
the first-run welcome while there is no persona.

Every card is a panel of its own with its own loading state and error boundary:
persona-scoped cards follow the active persona and name it in their title, the
others say "all personas". Cards fed by the tables use live queries; the system cards
(store and shard health, sync) read again every two seconds.
"""

from __future__ import annotations

from functools import partial

from nicegui import ui

from pjai.app.reads import dashboard as reads
from pjai.store import Row
from pjai.web.app import WebApp
from pjai.web.live import LivePanel
from pjai.web.views import dashboard_charts as charts
from pjai.web.views import dashboard_figures as figures
from pjai.web.views import dashboard_system as system
from pjai.web.views.dashboard_layout import SharedQueries
from pjai.web.views.view import View
from pjai.web.views.welcome import welcome

__all__ = ["VIEW", "build"]

_GRID = "grid w-full gap-4 grid-cols-1 md:grid-cols-2 items-start"


def build(web: WebApp) -> None:
    """Fill the content area with the dashboard, or the welcome while no persona lives."""

    def render(rows: list[Row]) -> None:
        counts = reads.persona_counts(rows)
        if counts.live:
            _dashboard(web)
        else:
            welcome(web, first_run=not counts.made)

    def shown(rows: list[Row]) -> object:
        # Rebuilt only when it turns from welcome to dashboard or back, not per persona.
        counts = reads.persona_counts(rows)
        return "dashboard" if counts.live else ("welcome", not counts.made)

    LivePanel("dashboard", partial(reads.personas_counted, web.manager), render, key=shown)


def _dashboard(web: WebApp) -> None:
    ui.label("Dashboard").classes("text-h5")
    with ui.element("div").classes(f"{_GRID} xl:grid-cols-4"):
        figures.personas(web)
        figures.memories_of_active(web)
        figures.memories_of_all(web)
        charts.EventRateCard(web)
    shared = SharedQueries()
    with ui.element("div").classes(f"{_GRID} xl:grid-cols-3"):
        figures.memory_health(web, shared)
        charts.tier_distribution(web)
        charts.importance(web, shared)
    with ui.element("div").classes(f"{_GRID} xl:grid-cols-4"):
        charts.timeline(web)
        system.system_health(web)
        system.sync(web)


VIEW = View("/", "Dashboard", "dashboard", build)
