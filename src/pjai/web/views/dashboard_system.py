"""The dashboard's system cards: health of the store and of each SQL shard, and the
sync status with its lag.

Neither is table data that a live query could follow: health probes both sides, sync
status reads the status file a running sync client writes. A :class:`PolledPanel`
reads them every two seconds, off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial
from typing import Any, Generic, TypeVar

from nicegui import ui

from pjai.app.reads import dashboard as reads
from pjai.app.syncstatus import SyncReport
from pjai.web.app import WebApp
from pjai.web.live import ShownKey, failure_card
from pjai.web.views.dashboard_layout import card

__all__ = ["POLL_INTERVAL_S", "PolledPanel", "sync", "system_health"]

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 2.0
"""How often the system cards read again."""

T = TypeVar("T")

_SPACING = 10
"""A read that took t seconds is not repeated before 10 t have passed since it started."""

_LEVELS = {
    "ok": "positive",
    "online": "positive",
    "degraded": "warning",
    "connecting": "warning",
    "offline": "warning",
    "off": "grey-6",
    "not running": "grey-6",
    "never connected": "grey-6",
    "stopped": "grey-6",
    "standalone": "grey-6",
}
"""Colours of the states; any other state (down, damaged, failed) is a failure."""


class PolledPanel(ui.column, Generic[T]):
    """A column that shows ``render(read())``, reading again every ``interval_s``.

    ``read`` runs in a worker thread, one read at a time; until the first result the
    panel shows a spinner, and a failed read shows its error until a later read
    succeeds (the error boundary, as a :class:`~pjai.web.live.LivePanel` has). A slow
    read is spaced out to take at most a tenth of the time: health checks every page
    of the store file while holding the manager's lock, which commits wait for.

    With ``key``, a read whose key equals that of the read shown is not drawn again
    (what the person is working with in the panel stays in place). With ``hold``, a
    read is drawn only if ``hold()`` gave one value, other than ``None``, before and
    after it: a panel gives ``None`` while the person is changing something in it, and
    a new value each time such a change ends, so that nothing read in the meantime (a
    file holding a value that is about to be put back) is drawn.
    """

    def __init__(
        self,
        name: str,
        read: Callable[[], T],
        render: Callable[[T], None],
        *,
        interval_s: float = POLL_INTERVAL_S,
        key: Callable[[T], object] | None = None,
        hold: Callable[[], object] | None = None,
    ) -> None:
        super().__init__()
        self.classes("w-full gap-1").props(f'data-panel="{name}"')
        self.name = name
        self._read = read
        self._render = render
        self._shown = ShownKey(key)
        self._hold = hold
        self._busy = False
        self._due = 0.0
        with self:
            self._content = ui.column().classes("w-full gap-1")
            with self._content, ui.row().classes("items-center gap-2 text-grey-7"):
                ui.spinner(size="sm")
                ui.label("loading…")
            ui.timer(interval_s, self._poll, immediate=True)

    async def _poll(self) -> None:
        clock = asyncio.get_running_loop().time
        started = clock()
        if self._busy or started < self._due:
            return
        self._busy = True
        try:
            # Not NiceGUI's run.io_bound: it swallows the cancellation of its caller, and
            # a timer whose callback was cancelled would then go on ticking.
            held = self._hold() if self._hold is not None else ()
            found = await asyncio.to_thread(self._read)
            self._due = started + _SPACING * (clock() - started)
            if self.is_deleted:
                return
            if self._hold is not None and (held is None or self._hold() != held):
                return
            if not self._shown.changed(found):
                return
            self._content.clear()
            with self._content:
                self._render(found)
        except Exception as exc:
            log.warning("panel %s failed", self.name, exc_info=exc)
            if self.is_deleted:
                return
            self._shown.forget()
            self._content.clear()
            with self._content, failure_card(self.name, exc):
                ui.label("Reading again every few seconds.").classes("text-caption")
        finally:
            self._busy = False


def system_health(web: WebApp) -> None:
    """The card with the health of the store, each SQL shard and the bridge."""
    with card("Store and SQL shards", "this data directory", name="system-health"):
        PolledPanel("system health", web.health.get, _health)


def sync(web: WebApp) -> None:
    """The card with the sync status and lag (or that the directory does not sync)."""
    with card("Sync", "this data directory", name="sync"):
        PolledPanel("sync status", partial(reads.sync_report, web.data_dir, web.manager), _sync)


def _status(state: str, *, testid: str) -> None:
    colour = _LEVELS.get(state, "negative")
    badge = ui.badge(state, color=colour).classes("text-body2 q-px-sm")
    badge.props(f'data-testid="{testid}"').mark(testid)


def _facts(facts: list[tuple[str, Any]], *, testids: str) -> None:
    """Labelled values; each value's test id is ``testids-<label>``."""
    with ui.grid(columns="auto minmax(0, 1fr)").classes("w-full gap-x-4 gap-y-0 text-body2"):
        for label, value in facts:
            ui.label(label).classes("text-grey-7")
            testid = f"{testids}-{label.replace(' ', '-')}"
            shown = ui.label(str(value)).classes("text-right ellipsis")
            shown.props(f'data-testid="{testid}"').mark(testid)


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    size = n / 1024
    for unit in ("KB", "MB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def _ms(value: float | None) -> str:
    return "not probed" if value is None else f"{value:.1f} ms"


def _health(health: reads.SystemHealth) -> None:
    with ui.row().classes("items-center gap-2"):
        ui.label("Overall").classes("text-weight-medium")
        _status(health.status, testid="system-status")
    store = health.store
    with ui.row().classes("items-center gap-2 q-mt-sm"):
        ui.label("Store").classes("text-weight-medium")
        _status(store.status, testid="store-status")
    if store.status == "off":
        ui.label("Switched off: commits go to SQL directly.").classes("text-caption text-grey-7")
    else:
        _facts(
            [
                ("events", store.events),
                ("pending", store.pending),
                ("quarantined", store.quarantined),
                ("probe", _ms(store.probe_ms)),
                ("on disk", _size(store.disk_bytes)),
            ],
            testids="store",
        )
    if store.error:
        ui.label(store.error).classes("text-caption text-negative")
    for problem in store.damage[:3]:
        ui.label(problem).classes("text-caption text-negative").props('data-damage=""')
    for number, shard in enumerate(health.shards, start=1):
        with ui.row().classes("items-center gap-2 q-mt-sm no-wrap"):
            ui.label(f"SQL shard {number}").classes("text-weight-medium")
            _status(shard.status, testid=f"shard-status-{number}")
        ui.label(shard.url).classes("text-caption text-grey-7 ellipsis w-full").tooltip(shard.url)
        _facts(
            [
                ("checkpoint", shard.checkpoint),
                ("probe", _ms(shard.probe_ms)),
                ("on disk", _size(shard.disk_bytes)),
            ],
            testids=f"shard-{number}",
        )
        if shard.error:
            ui.label(shard.error).classes("text-caption text-negative")
    bridge = health.bridge
    if store.status == "off":
        return  # nothing is bridged: commits write SQL directly
    ui.label(
        f"SQL behind the store by {bridge.lag_events} event(s)"
        + (f"; p95 projection {bridge.lag_p95_ms:.1f} ms" if bridge.lag_p95_ms is not None else "")
    ).classes("text-caption q-mt-sm")
    if bridge.last_error:
        ui.label(bridge.last_error).classes("text-caption text-negative")


def _sync(report: SyncReport | None) -> None:
    if report is None:
        with ui.row().classes("items-center gap-2"):
            _status("standalone", testid="sync-state")
        ui.label(
            "This data directory does not sync: every commit is confirmed at once. "
            "`pjai sync connect URL` on a new directory makes a synced one."
        ).classes("text-body2 text-grey-7")
        return
    with ui.row().classes("items-center gap-2"):
        _status(report.state, testid="sync-state")
        if report.in_step:
            ui.label("in step with the server").classes("text-positive text-body2")
    _facts(
        [
            ("server", report.url or "never connected"),
            ("lag", "unknown" if report.lag is None else f"{report.lag} event(s)"),
            ("pending", report.pending),
            ("server head", "unknown" if report.server_head is None else report.server_head),
            ("confirmed head", report.confirmed_head),
            ("rejected", report.rejected),
            ("reconnects", report.reconnects),
            ("last seen", report.updated_at or "never"),
        ],
        testids="sync",
    )
    if report.read_only:
        ui.label("Read-only token: local changes stay pending.").classes("text-caption")
    if report.last_error:
        ui.label(report.last_error).classes("text-caption text-negative")
