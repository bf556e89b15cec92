"""One event of the audit trail in a dialog: where and when it was made, its outcome,
why it was rejected and which event won, and its full payload as JSON."""

from __future__ import annotations

from functools import partial

from nicegui import ui

from pjai.app.display import shown_json, shown_text
from pjai.app.reads import audit as reads
from pjai.schema.types import from_iso
from pjai.store import Row
from pjai.web.app import WebApp
from pjai.web.live import LivePanel
from pjai.web.views.audit_table import OUTCOME_COLOURS

__all__ = ["EventDetail"]


class EventDetail:
    """The dialog showing one event at a time (it follows the event: a pending event
    shows confirmed once the sync confirms it)."""

    def __init__(self, web: WebApp) -> None:
        self.web = web
        self.dialog = ui.dialog().props('data-testid="audit-detail"').mark("audit-detail")
        with self.dialog, ui.card().classes("w-[900px] max-w-[95vw]"):
            self._body = ui.column().classes("w-full gap-2")
        # A closed dialog's panel stops listening: deleting it unsubscribes.
        self.dialog.on_value_change(lambda event: None if event.value else self._body.clear())

    def open(self, event_id: str) -> None:
        """Show the event with this id."""
        self._body.clear()
        with self._body:
            LivePanel("event", partial(reads.event, self.web.manager, event_id), self._fields)
        self.dialog.open()

    def _fields(self, rows: list[Row]) -> None:
        if not rows:
            ui.label("This event is not in the log.").classes("text-negative")
            return
        row = rows[0]
        with ui.row().classes("w-full items-center gap-2"):
            ui.label(row.name).classes("text-h6")
            ui.badge(row.status, color=OUTCOME_COLOURS.get(row.status, "grey")).props(
                'data-testid="audit-detail-outcome"'
            )
            ui.space()
            ui.button(icon="close", on_click=self.dialog.close).props("flat round dense")
        position = f"e{row.global_seq}" + (f"+{row.client_seq}" if row.client_seq else "")
        facts = [
            ("Event", row.event_id),
            ("Position", position),
            ("Time", from_iso(row.at).strftime("%Y-%m-%d %H:%M:%S UTC")),
            ("Client", shown_text(row.client_id)),
            # plugin:NAME@VERSION for what a plugin's run caused (a peer's is its own text)
            ("Session", shown_text(row.session_id)),
        ]
        with ui.grid(columns="auto 1fr").classes("gap-x-4 gap-y-1 text-body2"):
            for label, value in facts:
                ui.label(label).classes("text-grey-7")
                ui.label(value).classes("font-mono")
        if row.error:
            self._reason(row)
        ui.label("Payload").classes("text-subtitle2 q-mt-sm")
        payload = reads.payload_text(self.web.manager, row.event_id, row.name, row.args)
        ui.code(shown_json(payload), language="json").classes(
            "w-full max-h-[50vh] overflow-auto"
        ).props('data-testid="audit-payload"').mark("audit-payload")

    def _reason(self, row: Row) -> None:
        rejected = row.status == "rejected"
        with (
            ui.card().classes("w-full bg-red-1" if rejected else "w-full bg-amber-1").props("flat")
        ):
            ui.label("Rejected" if rejected else "Not applied here").classes("text-weight-medium")
            ui.label(row.error).classes("text-body2").props('data-testid="audit-reason"').mark(
                "audit-reason"
            )
            won = reads.winner_of(row.error)
            if won is not None:
                ui.button(
                    f"Open the event that won: {won.name} at {won.position}",
                    icon="emoji_events",
                    on_click=partial(self.open, won.event_id),
                ).props('flat dense no-caps data-testid="audit-open-winner"').mark(
                    "audit-open-winner"
                )
