"""The collaboration view: who else works on this store right now.

Presence travels through the sync server (``presence/1``, docs/sync-protocol.md): the
`pjai sync connect --name NAME` process of each instance announces it and writes the
others it hears of to the status file, which this view reads every second. Changes made
by others reach every view through the store, as any sync does; this one lists the
newest and marks those that just arrived.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial

from nicegui import ui

from pjai.app import PeerView, SyncReport, sync_status
from pjai.app.display import shown_text
from pjai.app.reads import collaboration as reads
from pjai.store import Row
from pjai.web.app import WebApp
from pjai.web.live import LivePanel
from pjai.web.views.dashboard_system import PolledPanel
from pjai.web.views.view import View

__all__ = ["POLL_INTERVAL_S", "VIEW", "build"]

POLL_INTERVAL_S = 1.0
"""How often the view reads the status file again."""


def build(web: WebApp) -> None:
    """Fill the content area with the collaboration view."""
    ui.label("Collaboration").classes("text-h5")
    with ui.card().classes("w-full max-w-[900px]"):
        ui.label("On this store now").classes("text-subtitle1 text-weight-medium")
        PolledPanel("presence", partial(_report, web), _show, interval_s=POLL_INTERVAL_S)
    if web.manager.syncing:
        with ui.card().classes("w-full max-w-[900px]"):
            ui.label("Changes from the others").classes("text-subtitle1 text-weight-medium")
            LivePanel(
                "changes from others",
                partial(reads.others_changes, web.manager),
                _Changes(web).show,
            )


class _Changes:
    """The others' newest changes; those that arrived since the last draw stand out."""

    def __init__(self, web: WebApp) -> None:
        self._web = web
        self._seen: set[str] | None = None

    def show(self, rows: list[Row]) -> None:
        fresh = {r.event_id for r in rows} - (self._seen or set())
        first = self._seen is None
        self._seen = {r.event_id for r in rows}
        if not rows:
            ui.label("None yet.").classes("text-grey-7")
            return
        # Who made them, by the names the others announce (read with the changes).
        names = {p.client_id: p.name for p in sync_status(self._web.data_dir).peers}
        for row in rows:
            arrived = row.event_id in fresh and not first
            line = ui.row().classes("w-full items-baseline gap-3 q-px-xs rounded")
            line.props('data-testid="others-change"' + (' data-new=""' if arrived else ""))
            if arrived:
                line.classes("bg-amber-2")
            with line:
                ui.label(f"e{row.global_seq}").classes("text-caption text-grey-7")
                ui.label(row.name)
                who = names.get(row.client_id)
                ui.label(shown_text(who) if who else f"client …{row.client_id[-8:]}").classes(
                    "text-caption text-grey-7 ellipsis min-w-0"
                )


def _report(web: WebApp) -> SyncReport | None:
    return sync_status(web.data_dir) if web.manager.syncing else None


def _show(report: SyncReport | None) -> None:
    if report is None:
        ui.label(
            "This data directory does not sync, so no one else works on its store. "
            "`pjai sync connect URL --name NAME` on a new directory joins a shared one."
        ).classes("text-grey-8")
        return
    if report.state == "not running":
        ui.label(
            "No sync client runs for this directory: `pjai sync connect URL --name NAME` "
            "shows this instance to the others and lists theirs here."
        ).classes("text-grey-8")
        return
    ui.label(f"Store {report.store_id} through {report.url} · this instance: {report.state}")
    if report.state != "online":
        why = f": {report.last_error}" if report.last_error else ""
        ui.label(
            f"Not connected{why}. The others cannot be seen until the server is reached "
            "again; what is committed here meanwhile is pushed then."
        ).props('data-testid="offline"').classes("text-deep-orange-10")
        return
    if not report.peers:
        ui.label("No one else is on this store now (or they take no part: --hidden).").props(
            'data-testid="no-peers"'
        ).classes("text-grey-7")
        return
    for peer in report.peers:
        _peer(peer)


def _peer(peer: PeerView) -> None:
    with ui.row().classes("w-full items-center gap-3 min-w-0").props('data-testid="peer"'):
        colour = "positive" if peer.state == "online" else "grey-6"
        ui.badge(peer.state, color=colour)
        # A name is whatever a peer announced: cut to the line, whole in its tooltip.
        name = shown_text(peer.name)
        ui.label(name).classes("text-weight-medium ellipsis min-w-0 max-w-full").tooltip(name)
        ui.label(f"seen {_ago(peer.last_seen)}").classes("text-caption text-grey-7")
        if peer.detail:
            shown = ", ".join(f"{k} {v}" for k, v in sorted(peer.detail.items()))
            ui.label(shown_text(shown)).classes("text-caption text-grey-7 wrap-anywhere")


def _ago(stamp: str) -> str:
    seconds = (datetime.now(UTC) - datetime.fromisoformat(stamp)).total_seconds()
    if seconds < 60:
        return f"{max(0, round(seconds))} s ago"
    return f"{round(seconds / 60)} min ago"


VIEW = View("/collaboration", "Collaboration", "groups", build)
