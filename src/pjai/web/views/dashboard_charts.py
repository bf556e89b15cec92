"""The dashboard's charts (NiceGUI's ECharts element): the active persona's tier
distribution, importance histogram and memories over time, and the store's events per
second."""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial
from typing import Any

from nicegui import ui

from pjai.app.reads import dashboard as reads
from pjai.app.reads.personas import PersonaChoice
from pjai.store import Row
from pjai.web.app import WebApp
from pjai.web.live import LivePanel
from pjai.web.views.dashboard_layout import (
    ALL_PERSONAS,
    TIER_COLOURS,
    SharedQueries,
    card,
    figure,
    live_chart,
    persona_card,
)

__all__ = ["EventRateCard", "importance", "tier_distribution", "timeline"]

log = logging.getLogger(__name__)

_TOOLTIP_AXIS = {"trigger": "axis"}
_DAY = timedelta(days=1)
_GRID = {"left": 48, "right": 48, "top": 24, "bottom": 32}


def tier_distribution(web: WebApp) -> None:
    """A donut of the active persona's memories per tier."""

    def fill(persona: PersonaChoice) -> None:
        source = partial(reads.tier_distribution, web.manager, persona.id)
        live_chart("tier distribution", source, _tier_options, height=240)

    persona_card(web, "Tier distribution", "tier-distribution", fill)


def _tier_options(rows: list[Row]) -> dict[str, Any] | None:
    tiers = reads.tier_counts(rows)
    if not any(tiers.values()):
        return None
    return {
        "tooltip": {"trigger": "item", "formatter": "{b}: {c} ({d}%)"},
        "legend": {"bottom": 0},
        "series": [
            {
                "type": "pie",
                "radius": ["45%", "72%"],
                "center": ["50%", "45%"],
                "label": {"position": "inside", "formatter": "{c}", "color": "#fff"},
                "data": [
                    {"name": tier, "value": n, "itemStyle": {"color": TIER_COLOURS[tier]}}
                    for tier, n in tiers.items()
                    if n
                ],
            }
        ],
    }


def importance(web: WebApp, shared: SharedQueries) -> None:
    """A histogram of the active persona's memories by importance, in tenths (from the
    query of the memory health card)."""

    def fill(persona: PersonaChoice) -> None:
        make = partial(reads.memory_health, web.manager, persona.id)
        source = shared.source(("health", persona.id), make)
        live_chart("importance histogram", source, _importance_options, height=240)

    persona_card(web, "Importance", "importance", fill)


def _importance_options(rows: list[Row]) -> dict[str, Any] | None:
    histogram = reads.health(rows).importance_histogram
    if not any(histogram):
        return None
    return {
        "tooltip": _TOOLTIP_AXIS,
        "grid": _GRID,
        "xAxis": {
            "type": "category",
            "name": "importance",
            "nameLocation": "middle",
            "nameGap": 22,
            "data": [f"{tenth / 10:.1f}" for tenth in range(10)],
        },
        "yAxis": {"type": "value", "minInterval": 1},
        "series": [{"type": "bar", "name": "memories", "data": histogram, "color": "#5c6bc0"}],
    }


def timeline(web: WebApp) -> None:
    """The active persona's memories by when they happened: how many in each day (or
    week, over a long span) and the running total."""

    def fill(persona: PersonaChoice) -> None:
        source = partial(reads.memory_timeline, web.manager, persona.id)
        live_chart("memories over time", source, _timeline_options)

    persona_card(web, "Memories over time", "timeline", fill, wide=True)


def _timeline_options(rows: list[Row]) -> dict[str, Any] | None:
    points = reads.timeline_points(rows)
    if not points:
        return None
    return {
        "tooltip": _TOOLTIP_AXIS,
        "legend": {"top": 0},
        "grid": {**_GRID, "top": 32},
        # A day either side, so that a single day is a bar rather than the whole axis.
        "xAxis": {
            "type": "time",
            "min": (points[0].start - _DAY).isoformat(),
            "max": (points[-1].start + _DAY).isoformat(),
            "minInterval": _DAY.total_seconds() * 1000,
            "axisLabel": {"formatter": "{d} {MMM}"},
        },
        "yAxis": [
            {"type": "value", "minInterval": 1, "name": "added"},
            {"type": "value", "minInterval": 1, "name": "total", "splitLine": {"show": False}},
        ],
        "series": [
            {
                "type": "bar",
                "name": "added",
                "color": "#90caf9",
                "barMaxWidth": 24,
                "data": [[p.start.isoformat(), p.added] for p in points],
            },
            {
                "type": "line",
                "name": "total",
                "yAxisIndex": 1,
                "step": "end",
                "color": "#3949ab",
                "showSymbol": len(points) < 40,
                "data": [[p.start.isoformat(), p.total] for p in points],
            },
        ],
    }


class EventRateCard:
    """Events per second of the store's event log (every persona's), over the last
    minute.

    The counts come from a live query on the log, which hears of this app's commits and
    of other processes' (the CLI, a sync client). A timer redraws them every second, so
    that the window moves with the clock when nothing is committed, and notices the
    store being switched off or on (the log exists with the store only).
    """

    def __init__(self, web: WebApp) -> None:
        self._web = web
        self._rows: list[Row] | None = None
        self._store_on: bool | None = None
        with card("Events per second", ALL_PERSONAS, name="event-rate"):
            self._body = ui.column().classes("w-full gap-1")
            ui.timer(1.0, self._tick)
        self._build()

    def _build(self) -> None:
        self._store_on = self._web.manager.use_livestore
        self._rows = None
        self._body.clear()
        with self._body:
            if not self._store_on:
                ui.label(reads.STORE_OFF).classes("text-grey-7").props(
                    'data-testid="event-rate-off"'
                )
                return
            with ui.row().classes("items-end gap-4"):
                with ui.column().classes("gap-0"):
                    self._recent = figure("0", testid="event-rate", caption="events/s (last 5 s)")
                self._peak = ui.label("").classes("text-caption text-grey-7")
            self._chart = ui.echart(_rate_options([], [])).classes("w-full h-[110px]")
            self._chart.props('data-chart="events per second"').mark("event-rate-chart")
            LivePanel(
                "events per second", partial(reads.event_seconds, self._web.manager), self._arrived
            )

    def _arrived(self, rows: list[Row]) -> None:
        self._rows = rows
        self._draw()

    def _tick(self) -> None:
        manager = self._web.manager
        if manager.use_livestore != self._store_on:
            self._build()
            return
        if self._rows is not None:
            self._draw()

    def _draw(self) -> None:
        assert self._rows is not None
        rate = reads.event_rate(self._rows)
        self._recent.set_text(f"{rate.recent:g}")
        partial_note = " (busier than the newest events read: early seconds count low)"
        self._peak.set_text(
            f"peak {rate.peak}/s in the last minute" + (partial_note if rate.partial else "")
        )
        labels = [second.strftime("%H:%M:%S") for second in rate.seconds]
        self._chart.options.clear()
        self._chart.options.update(_rate_options(labels, rate.per_second))
        self._chart.update()


def _rate_options(labels: list[str], counts: list[int]) -> dict[str, Any]:
    return {
        "animation": False,
        "tooltip": _TOOLTIP_AXIS,
        "grid": {"left": 36, "right": 8, "top": 8, "bottom": 20},
        "xAxis": {"type": "category", "data": labels, "axisLabel": {"interval": 19}},
        "yAxis": {"type": "value", "minInterval": 1, "splitNumber": 2},
        "series": [{"type": "bar", "name": "events", "data": counts, "color": "#3949ab"}],
    }
