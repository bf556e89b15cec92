"""Optimizing a persona's memories from the explorer: first a preview of what would
move and why (the optimizer's plan, not committed), then Apply runs the optimizer
through the service and says what it did.

Both score every memory of the persona: they run on the optimizer's own threads
(:mod:`pjai.web.heavy`), a few at a time across all tabs and one per tab; another is
refused at once and says why."""

from __future__ import annotations

from functools import partial

from nicegui import ui

from pjai.app.reads import memories as reads
from pjai.errors import BusyError
from pjai.memory.optimizer import OptimizationReport
from pjai.schema.tables import TIERS
from pjai.web.app import WebApp
from pjai.web.views.explorer_table import shown_name

__all__ = ["REASONS", "OptimizeDialog"]

REASONS = {
    "optimization": "ranked for this tier by score",
    "access_pattern": "opened recently",
    "age_decay": "grown old",
    "importance_change": "importance changed",
    "retention": "past the retention period",
    "restricted": "restricted data past its retention period",
    "session": "from an earlier session (memory retention is off)",
    "space": "over max_memories, least important",
}
"""What each reason of a move means, as the preview says it."""

_MOVE_COLUMNS = [
    {"name": "name", "label": "Memory", "field": "name", "align": "left"},
    {"name": "action", "label": "Action", "field": "action", "align": "left"},
    {"name": "change", "label": "Tier", "field": "change", "align": "left"},
    {"name": "reason", "label": "Why", "field": "reason", "align": "left"},
    {"name": "score", "label": "Score", "field": "score"},
]


class OptimizeDialog:
    """The preview-then-apply dialog for one persona."""

    def __init__(self, web: WebApp, persona_id: str) -> None:
        self.web = web
        self.persona_id = persona_id
        self.tab = ui.context.client.id
        self.dialog = ui.dialog().props('data-testid="optimize-dialog"')

    async def open(self) -> None:
        """Plan a run and show what it would do (the plan scores every memory of the
        persona: off the event loop, so that other pages go on meanwhile)."""
        preview = partial(reads.optimize_preview, self.web.manager, self.persona_id)
        try:
            report = await self.web.optimizer.run(preview, tab=self.tab)
        except BusyError as exc:
            ui.notify(f"Not previewed: {exc}", type="warning", multi_line=True)
            return
        self.dialog.clear()
        with self.dialog, ui.card().classes("w-[820px] max-w-[95vw] gap-2"):
            ui.label("Optimize memories").classes("text-h6")
            if not report.moves:
                ui.label("Nothing would move: every memory is in its tier.").props(
                    'data-testid="optimize-nothing"'
                )
            else:
                ui.label(_summary(report)).props('data-testid="optimize-summary"')
            _tiers(report)
            for note in report.notes:
                ui.label(note).classes("text-caption text-deep-orange-10")
            if report.moves:
                self._moves(report)
            with ui.row().classes("w-full justify-end gap-2"):
                ui.button("Close", on_click=self.dialog.close).props("flat")
                ui.button("Apply", icon="auto_fix_high", on_click=self._apply).props(
                    'unelevated data-testid="optimize-apply"'
                ).set_enabled(bool(report.moves))
        self.dialog.open()

    def _moves(self, report: OptimizationReport) -> None:
        names = reads.names(self.web.manager, [m.memory_id for m in report.moves])
        rows = [
            {
                "id": m.memory_id,
                "name": shown_name(*names[m.memory_id]) if m.memory_id in names else m.memory_id,
                "action": m.action,
                "change": f"{m.tier} → {m.to}" if m.to else m.tier,
                "reason": REASONS.get(m.reason, m.reason),
                "score": f"{m.score:.3f}",
            }
            for m in report.moves
        ]
        table = ui.table(rows=rows, columns=_MOVE_COLUMNS, row_key="id", pagination=10)
        table.classes("w-full").props('flat bordered dense data-testid="optimize-moves"')
        table.mark("optimize-moves")

    async def _apply(self) -> None:
        run = partial(self.web.services.memories.optimize, self.persona_id)
        try:
            reports = await self.web.optimizer.run(run, tab=self.tab)
        except BusyError as exc:
            ui.notify(f"Not optimized: {exc}", type="warning", multi_line=True)
            return
        moved = sum(len(r.moves) for r in reports)
        self.dialog.close()
        ui.notify(
            f"Optimized: {moved} memories moved" if moved else "Optimized: nothing moved",
            type="positive",
        )


def _summary(report: OptimizationReport) -> str:
    parts = [
        (report.promoted, "promoted"),
        (report.demoted, "demoted"),
        (report.archived, "archived"),
        (
            report.deleted_for_retention + report.deleted_for_privacy + report.deleted_for_space,
            "deleted",
        ),
    ]
    said = ", ".join(f"{n} {what}" for n, what in parts if n)
    return f"{len(report.moves)} memories would change: {said}."


def _tiers(report: OptimizationReport) -> None:
    with ui.row().classes("gap-6"):
        for tier in TIERS:
            before = report.tiers_before.get(tier, 0)
            after = report.tiers_after.get(tier, 0)
            with ui.column().classes("gap-0 items-center"):
                ui.label(tier).classes("text-caption text-grey-7")
                ui.label(f"{before} → {after}").props(f'data-testid="optimize-tier-{tier}"')
