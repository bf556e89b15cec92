"""The dashboard's key figures: personas, memories (of the active persona and of all),
and memory health with its alerts. Each card is fed by its own live query."""

from __future__ import annotations

from functools import partial

from nicegui import ui

from pjai.app.reads import dashboard as reads
from pjai.app.reads.personas import PersonaChoice
from pjai.memory.analytics import capacity_level
from pjai.schema.tables import TIERS
from pjai.store import Row
from pjai.web.app import WebApp
from pjai.web.live import LivePanel
from pjai.web.views.dashboard_layout import (
    ALL_PERSONAS,
    TIER_COLOURS,
    TIER_PALETTE,
    SharedQueries,
    card,
    figure,
    persona_card,
)

__all__ = ["memories_of_active", "memories_of_all", "memory_health", "personas"]


def personas(web: WebApp) -> None:
    """The card counting live personas (and deleted ones, when there are)."""
    with card("Personas", ALL_PERSONAS, name="personas"):

        def render(rows: list[Row]) -> None:
            counts = reads.persona_counts(rows)
            deleted = counts.made - counts.live
            figure(
                str(counts.live),
                testid="persona-count",
                caption=f"{deleted} deleted" if deleted else "live personas",
            )

        LivePanel("persona count", partial(reads.personas_counted, web.manager), render)


def memories_of_active(web: WebApp) -> None:
    """The card with the active persona's memory count and what stands out among them."""

    def fill(persona: PersonaChoice) -> None:
        def render(rows: list[Row]) -> None:
            figures = reads.memory_figures(rows)
            figure(str(figures.total), testid="memory-count", caption="live memories")
            average = (
                f"{figures.average_importance:.2f}"
                if figures.average_importance is not None
                else "none yet"
            )
            with ui.grid(columns="1fr auto").classes("w-full gap-x-4 gap-y-0 text-body2 q-mt-sm"):
                for label, value in (
                    ("average importance", average),
                    ("high importance", str(figures.high_importance)),
                    ("opened often", str(figures.frequently_accessed)),
                    ("opened in the last 24 h", str(figures.accessed_last_24h)),
                ):
                    ui.label(label).classes("text-grey-7")
                    ui.label(value).classes("text-right")

        LivePanel(
            "memory statistics",
            partial(reads.memory_statistics, web.manager, persona.id),
            render,
        )

    persona_card(web, "Memories", "memories", fill)


def memories_of_all(web: WebApp) -> None:
    """The card with every persona's memories together, per tier."""
    with card("Memories", ALL_PERSONAS, name="memories-all"):

        def render(rows: list[Row]) -> None:
            tiers = reads.tier_counts(rows)
            figure(str(sum(tiers.values())), testid="memory-count-all", caption="live memories")
            with ui.row().classes("gap-2 q-mt-sm"):
                for tier, n in tiers.items():
                    chip = ui.chip(f"{tier} {n}").props("dense outline")
                    chip.props["data-tier"] = tier
                    chip.style(f"color: {TIER_COLOURS[tier]}")

        LivePanel(
            "memories of all personas", partial(reads.tier_distribution, web.manager, None), render
        )


def memory_health(web: WebApp, shared: SharedQueries) -> None:
    """The active persona's memory health: score, use of each tier's capacity,
    fragmentation, stale share and alerts."""

    def fill(persona: PersonaChoice) -> None:
        make = partial(reads.memory_health, web.manager, persona.id)
        LivePanel("memory health", shared.source(("health", persona.id), make), _health)

    persona_card(web, "Memory health", "memory-health", fill)


def _health(rows: list[Row]) -> None:
    health = reads.health(rows)
    colour = "positive" if health.score >= 80 else "warning" if health.score >= 50 else "negative"
    with ui.row().classes("items-end gap-6"):
        with ui.column().classes("gap-0"):
            figure(f"{health.score:.0f}", testid="health-score", caption="score of 100").classes(
                f"text-{colour}"
            )
        with ui.column().classes("gap-0 text-body2"):
            ui.label(f"fragmentation {health.fragmentation:.0f} of 100")
            ui.label(f"stale {health.stale_share:.0%} of memories")
    with ui.column().classes("w-full gap-1 q-mt-sm"):
        for tier in TIERS:
            use = health.capacity_use[tier]
            with ui.row().classes("w-full items-center no-wrap gap-2 text-body2"):
                ui.label(tier).classes("w-10")
                ui.linear_progress(value=min(use, 1.0), show_value=False, size="10px").props(
                    f'color="{_bar_colour(use, tier)}" rounded'
                ).classes("grow")
                ui.label(f"{health.tiers[tier]} · {use:.0%}").classes("w-28 text-right no-wrap")
    with ui.column().classes("w-full gap-1 q-mt-sm").props('data-alerts=""'):
        if not health.alerts:
            with ui.row().classes("items-center gap-1 text-positive text-body2"):
                ui.icon("check_circle")
                ui.label("No alerts")
        for alert in health.alerts:
            critical = alert.level == "critical"
            colour = "text-negative" if critical else "text-deep-orange-10"  # readable on white
            with ui.row().classes(f"items-center gap-1 text-body2 {colour}"):
                ui.icon("error" if critical else "warning")
                ui.label(f"{alert.level}: {alert.message}")


def _bar_colour(use: float, tier: str) -> str:
    level = capacity_level(use)
    if level == "critical":
        return "negative"
    if level == "warning":
        return "warning"
    return TIER_PALETTE[tier]
