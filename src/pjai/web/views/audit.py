"""The audit trail: every event of the store's log, filtered, searched and paged on the
server, with the conflicts a sync lost and the configuration changes beside it.

The parts, one module each: the filter bar (``audit_filters``), the table
(``audit_table``), an event's detail (``audit_detail``) and the side cards
(``audit_cards``). Everything shown is read live from the log, so events committed
anywhere (this page, the CLI, a sync client) appear as they are logged. The trail reads
the store's own log: with the store switched off the view says so.
"""

from __future__ import annotations

from nicegui import ui

from pjai.app.reads.audit import STORE_OFF, AuditFilter
from pjai.web.app import WebApp
from pjai.web.live import follow_the_store
from pjai.web.views.audit_cards import config_card, conflicts_card
from pjai.web.views.audit_detail import EventDetail
from pjai.web.views.audit_filters import AuditFilters
from pjai.web.views.audit_table import EventFeed
from pjai.web.views.view import View

__all__ = ["VIEW", "AuditTrail", "build"]


def build(web: WebApp) -> None:
    """Fill the content area with the audit trail (or, with the store off, say why it
    is empty); it rebuilds when the store is switched on or off."""
    with ui.column().classes("w-full gap-3 q-pa-md"):
        ui.label("Audit trail").classes("text-h5")
        content = ui.column().classes("w-full gap-3")
        follow_the_store(
            content,
            lambda: web.manager.store,
            lambda: AuditTrail(web) if web.manager.use_livestore else _store_off(),
        )


def _store_off() -> None:
    with (
        ui.card().classes("w-full bg-amber-1").props('flat bordered data-testid="audit-store-off"')
    ):
        ui.label(f"Nothing to show: {STORE_OFF}.").classes("text-body1")
        ui.label(
            "Events are journalled in SQL meanwhile and reach the store's log when it is "
            "switched back on (pjai flags set use_livestore true)."
        ).classes("text-body2 text-grey-8")


class AuditTrail:
    """The filter, the event table, the event detail, and the side cards."""

    def __init__(self, web: WebApp) -> None:
        self.web = web
        self.detail = EventDetail(web)
        self.filters = AuditFilters(web, self.show)
        total = ui.row().classes("items-center")
        self.feed = EventFeed(web, total, self.detail.open)
        # Side by side on a wide screen, one above the other on a narrow one.
        with ui.row().classes("w-full items-start gap-3 flex-col md:flex-row md:flex-nowrap"):
            with ui.column().classes("w-full md:w-1/2 min-w-0"):
                conflicts_card(web, self.detail.open)
            with ui.column().classes("w-full md:w-1/2 min-w-0"):
                config_card(web, self.detail.open)
        self.feed.show(AuditFilter())

    def show(self, where: AuditFilter) -> None:
        """Page through the events ``where`` selects."""
        self.feed.show(where)


VIEW = View("/audit", "Audit trail", "history", build)
