"""The devtools tabs about the store itself: its live queries, the newest events with
their sync status, the sync positions with connect and disconnect, and the feature
flags.

The event log is a live query. The live queries' figures and the positions are not
table data (they change as queries run and the sync client moves): a
:class:`~pjai.web.views.dashboard_system.PolledPanel` reads them every two seconds.
"""

from __future__ import annotations

import asyncio
import os
from functools import partial
from typing import Any

from nicegui import ui
from nicegui.events import ValueChangeEventArguments

from pjai.app import flag_states, set_flag, sync_status
from pjai.app.reads import devtools as reads
from pjai.hybrid.flags import FlagState
from pjai.store import Row
from pjai.web.app import WebApp
from pjai.web.live import LivePanel, failure_text
from pjai.web.views.dashboard_system import PolledPanel

__all__ = ["event_log", "flags", "live_queries", "sync_and_flags"]

_STATUS = {"pending": "warning", "confirmed": "positive", "rejected": "negative"}


def live_queries(web: WebApp) -> None:
    """The live queries the store re-runs after commits, with their figures."""
    with (
        ui.column().classes("w-full gap-1").props('data-testid="live-queries"').mark("live-queries")
    ):
        ui.label(
            "Live queries with subscribers; the store re-runs them after commits that "
            "touch their tables."
        ).classes("text-caption text-grey-7")
        PolledPanel("live queries", partial(reads.live_queries, web.manager), _live_table)


def _live_table(found: list[reads.LiveQueryInfo]) -> None:
    if not found:
        ui.label("no live query has a subscriber").classes("text-grey-7")
        return
    ui.label(f"{len(found)} live queries").classes("text-caption")
    columns = [
        {"name": "sql", "label": "SQL", "field": "sql", "align": "left"},
        {"name": "tables", "label": "Tables", "field": "tables", "align": "left"},
        {"name": "subscribers", "label": "Subscribers", "field": "subscribers"},
        {"name": "runs", "label": "Runs", "field": "runs"},
        {"name": "last", "label": "Last run", "field": "last", "style": "white-space: nowrap"},
    ]
    rows = [
        {
            "id": index,
            "sql": info.sql,
            "tables": ", ".join(info.tables),
            "subscribers": info.subscribers,
            "runs": info.runs,
            "last": "—" if info.last_run_s is None else f"{info.last_run_s * 1000:.2f} ms",
        }
        for index, info in enumerate(found)
    ]
    ui.table(columns=columns, rows=rows, row_key="id", pagination=0).classes("w-full").props(
        "dense flat bordered wrap-cells"
    )


def event_log(web: WebApp) -> None:
    """The newest events with their positions and sync status, kept current."""
    with ui.column().classes("w-full gap-1").props('data-testid="event-log"').mark("event-log"):
        ui.label(f"The newest {reads.EVENT_PAGE} events of the store's log.").classes(
            "text-caption text-grey-7"
        )
        LivePanel("event log", partial(reads.event_log, web.manager), _events)


def _events(rows: list[Row]) -> None:
    if not rows:
        ui.label("the log is empty").classes("text-grey-7")
        return
    for row in rows:
        with ui.row().classes("w-full items-center no-wrap gap-3"):
            ui.label(str(row.position)).classes("font-mono w-16 text-right")
            ui.badge(str(row.status), color=_STATUS.get(str(row.status), "grey"))
            ui.label(str(row.name)).classes("w-64")
            ui.label(str(row.at)[:19].replace("T", " ")).classes("text-caption text-grey-7")
            if row.error:
                ui.label(str(row.error)).classes("text-caption text-negative ellipsis")


def sync_and_flags(web: WebApp) -> None:
    """The store's positions and sync status, and a switch per feature flag."""
    with ui.row().classes("w-full gap-3 items-start"):
        with ui.card().classes("grow"):
            ui.label("Sync").classes("text-subtitle2")
            PolledPanel(
                "sync positions", partial(reads.sync_positions, web.data_dir, web.manager), _sync
            )
            ui.separator()
            _Connection(web)
        flags(web)


def flags(web: WebApp) -> None:
    """A card with a switch per feature flag, drawn again only when a flag changes and
    no switch of it is being flipped: a switch being flipped stays in place, also while
    the flags file holds its new value only until the change is refused."""
    flips = _Flips()
    with ui.card().classes("grow"):
        ui.label("Flags").classes("text-subtitle2")
        PolledPanel(
            "flags",
            lambda: flag_states(web.data_dir).states,
            partial(_flags, web, flips),
            key=list,
            hold=flips.hold,
        )


class _Flips:
    """The changes of flags the card's switches started: how many are under way, and
    how many have ended."""

    def __init__(self) -> None:
        self.under_way = 0
        self.ended = 0

    def hold(self) -> int | None:
        """``None`` while a change is under way, else the count of those ended."""
        return None if self.under_way else self.ended


def _sync(found: reads.SyncPositions) -> None:
    lines = [
        ("head", str(found.head)),
        ("confirmed head", str(found.confirmed_head)),
        ("pending", str(found.pending)),
        ("rejected", str(found.rejected)),
        ("SQL follows up to", str(found.manager_head)),
        ("mode", "synced" if found.syncing else "standalone"),
    ]
    report = found.report
    if report is not None:
        lines += [
            ("client", report.state),
            ("server head", "—" if report.server_head is None else str(report.server_head)),
            ("lag", "—" if report.lag is None else str(report.lag)),
        ]
        if report.last_error:
            lines.append(("last error", report.last_error))
    for name, value in lines:
        with ui.row().classes("w-full justify-between"):
            ui.label(name).classes("text-grey-8")
            ui.label(value).classes("font-mono")


class _Connection:
    """Connect the app's own sync client to a server, or disconnect it."""

    def __init__(self, web: WebApp) -> None:
        self.web = web
        self.box = ui.column().classes("w-full gap-2").props('data-testid="sync-connection"')
        self.box.mark("sync-connection")
        self._draw()

    def _draw(self) -> None:
        self.box.clear()
        link = self.web.sync
        with self.box:
            if link.client is not None:
                ui.label(f"This app syncs through {link.url}.").props(
                    'data-testid="sync-connected"'
                ).mark("sync-connected")
                ui.button("Disconnect", icon="link_off", on_click=self._disconnect).props(
                    'outline data-testid="sync-disconnect"'
                ).mark("sync-disconnect")
                return
            if not self.web.manager.syncing:
                ui.label(
                    "This data directory is standalone: `pjai sync connect URL` on a new "
                    "directory makes a synced one."
                ).classes("text-caption text-grey-7")
                return
            running = sync_status(self.web.data_dir).pid
            if running is not None and running != os.getpid():
                ui.label(
                    f"Process {running} (`pjai sync connect`) syncs this data directory; "
                    "stop it there to connect from here."
                ).classes("text-caption text-grey-7").props('data-testid="sync-elsewhere"')
                return
            self.url = ui.input("Sync server", placeholder="http://host:8765").classes("w-full")
            self.url.mark("sync-url")
            self.token = ui.input("Token", password=True, password_toggle_button=True)
            self.token.classes("w-full").mark("sync-token")
            self.name = ui.input("Name others see (optional)").classes("w-full")
            self.name.mark("sync-name")
            ui.button("Connect", icon="link", on_click=self._connect).props(
                'data-testid="sync-connect"'
            ).mark("sync-connect")

    async def _connect(self) -> None:
        try:
            status = await self.web.sync.connect(
                self.url.value.strip(),
                token=self.token.value.strip(),
                name=self.name.value.strip() or None,
            )
        except Exception as exc:
            ui.notify(failure_text(exc), type="negative", multi_line=True)
            return
        ui.notify(f"sync client {status.state}", type="positive")
        self._draw()

    async def _disconnect(self) -> None:
        await self.web.sync.disconnect()
        ui.notify("sync client stopped")
        self._draw()


def _flags(web: WebApp, flips: _Flips, states: list[FlagState]) -> None:
    undoing: set[str] = set()
    for state in states:
        with ui.row().classes("w-full items-center no-wrap gap-3"):

            async def flip(event: ValueChangeEventArguments[Any], name: str = state.name) -> None:
                if name in undoing:  # the switch put back after a refusal
                    undoing.discard(name)
                    return
                value = bool(event.value)
                # What is said afterwards goes to the page: the switch may be gone by
                # then (the flags drawn again, or the whole tab when the store switches).
                page = ui.context.client
                flips.under_way += 1
                try:
                    await asyncio.to_thread(set_flag, web.data_dir, name, value, source="web")
                except Exception as exc:
                    sender = event.sender
                    if isinstance(sender, ui.switch) and not sender.is_deleted:
                        undoing.add(name)
                        sender.value = not value  # the flag is as it was
                    with page:  # a path in the reason breaks rather than leaving the screen
                        ui.notify(
                            failure_text(exc),
                            type="negative",
                            multi_line=True,
                            classes="wrap-anywhere",
                        )
                    return
                finally:
                    flips.under_way -= 1
                    flips.ended += 1
                with page:
                    ui.notify(f"flag {name} is {'on' if value else 'off'}")

            switch = ui.switch(state.name, value=state.value, on_change=flip)
            switch.props(f'data-testid="flag-{state.name}"').mark(f"flag-{state.name}")
            if state.source == "environment":
                switch.disable()
            ui.label(f"{state.description} ({state.source})").classes("text-caption text-grey-7")
