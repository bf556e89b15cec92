"""The dashboard's building blocks: a card with its title and scope, a key figure, the
tier colours, and a chart kept current by a live query."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from nicegui import ui

from pjai.app.display import shown_text
from pjai.app.reads.personas import PersonaChoice
from pjai.store import LiveQuery, Row
from pjai.web.active import follow_active
from pjai.web.app import WebApp
from pjai.web.live import LivePanel, Source

__all__ = [
    "ALL_PERSONAS",
    "TIER_COLOURS",
    "TIER_PALETTE",
    "SharedQueries",
    "card",
    "figure",
    "live_chart",
    "persona_card",
]

ALL_PERSONAS = "all personas"
"""The scope of a card whose figures cover every persona."""

TIER_COLOURS = {"hot": "#e53935", "warm": "#fb8c00", "cold": "#1e88e5"}
"""Each tier's colour in charts and chips."""

TIER_PALETTE = {"hot": "red-6", "warm": "orange-8", "cold": "blue-7"}
"""The same colours by their names in Quasar's palette, for Quasar's ``color`` props."""

Options = Callable[[list[Row]], dict[str, Any] | None]
"""ECharts options from a live query's rows, or ``None`` when there is nothing to draw."""


class SharedQueries:
    """Live queries that more than one card of a page shows, each made once, so that a
    commit re-runs it once for all of them."""

    def __init__(self) -> None:
        self._made: dict[object, LiveQuery] = {}

    def source(self, key: object, make: Source) -> Source:
        """A panel source giving the query ``key`` names, made by ``make`` when first
        asked for (and again after ``make`` failed)."""

        def shared() -> LiveQuery:
            live = self._made.get(key)
            if live is None:
                live = self._made[key] = make()
            return live

        return shared


@contextmanager
def card(title: str, scope: str, *, name: str, wide: bool = False) -> Iterator[ui.label]:
    """A dashboard card headed by ``title`` and what its figures cover (a persona's name
    or :data:`ALL_PERSONAS`); yields the card's scope label, then fills the card."""
    span = " xl:col-span-2" if wide else ""
    with ui.card().classes(f"w-full min-w-0{span}").props(f'data-card="{name}"'):
        with ui.row().classes("w-full items-baseline gap-x-2 gap-y-0"):
            ui.label(title).classes("text-subtitle1 text-weight-medium")
            label = ui.label(f"· {scope}").classes("text-caption text-grey-7")
            label.props('data-scope=""')
        yield label


def persona_card(
    web: WebApp, title: str, name: str, fill: Callable[[PersonaChoice], None], *, wide: bool = False
) -> None:
    """A card about the active persona: ``fill(persona)`` fills it, again whenever
    another persona becomes the active one; without one it says so."""
    with card(title, "active persona", name=name, wide=wide) as scope:

        def build(persona: PersonaChoice | None) -> None:
            if persona is None:
                scope.set_text("· no active persona")
                ui.label("No persona is active: choose one in the header.").classes("text-grey-7")
                return
            scope.set_text(f"· {shown_text(persona.name)}")
            fill(persona)

        follow_active(web, build)


def figure(value: str, *, testid: str, caption: str | None = None) -> ui.label:
    """A key figure: a big number (its test id names it), with a caption below."""
    number = ui.label(value).classes("text-h4 text-weight-bold leading-none")
    number.props(f'data-testid="{testid}"').mark(testid)
    if caption:
        ui.label(caption).classes("text-caption text-grey-7")
    return number


def live_chart(
    name: str,
    source: Source,
    options: Options,
    *,
    height: int = 260,
    empty: str = "No memories yet.",
) -> LivePanel:
    """An ECharts chart that each result of ``source`` redraws in place (``empty`` says
    why there is none while ``options`` finds nothing to draw).

    The chart lives beside the panel (not inside it) so that a new result updates it
    rather than building a new one; the panel holds the loading state, the error and
    the note shown when there is nothing to draw.
    """
    chart = ui.echart({}).classes(f"w-full h-[{height}px]").props(f'data-chart="{name}"')
    chart.set_visibility(False)

    def render(rows: list[Row]) -> None:
        drawn = options(rows)
        if drawn is None:
            chart.set_visibility(False)
            ui.label(empty).classes("text-grey-7")
            return
        chart.options.clear()
        # Each new result is drawn afresh; animating every one would show figures
        # mid-way to their values while commits keep coming.
        chart.options.update({"animation": False, **drawn})
        chart.update()
        chart.set_visibility(True)

    return LivePanel(name, source, render)
