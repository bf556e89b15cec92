"""The audit trail's two side cards: the conflicts a sync lost, each with the event that
won, and the configuration changes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial

from nicegui import ui

from pjai.app.display import shown_text
from pjai.app.reads import audit as reads
from pjai.schema.types import from_iso
from pjai.store import Row
from pjai.web.app import WebApp
from pjai.web.live import LivePanel

__all__ = ["config_card", "conflicts_card"]

Open = Callable[[str], object]


@contextmanager
def _card(title: str, caption: str, testid: str) -> Iterator[None]:
    with (
        ui.card()
        .classes("w-full gap-1")
        .props(f'flat bordered data-testid="{testid}"')
        .mark(testid)
    ):
        ui.label(title).classes("text-subtitle1 text-weight-medium")
        ui.label(caption).classes("text-caption text-grey-7")
        yield


def conflicts_card(web: WebApp, on_open: Open) -> None:
    """The events a sync rejected, newest first, each with why and the event that won."""
    with _card(
        "Conflicts", "Local events a sync rejected, and the event that won", "audit-conflicts"
    ):
        LivePanel("conflicts", partial(reads.conflicts, web.manager), partial(_conflicts, on_open))


def _conflicts(on_open: Open, rows: list[Row]) -> None:
    if not rows:
        ui.label("No conflicts: no event was rejected.").classes("text-grey-7")
        return
    for row in rows:
        won = reads.winner_of(row.error)
        with (
            ui.column()
            .classes("w-full gap-0 q-py-xs")
            .props('data-testid="audit-conflict"')
            .mark("audit-conflict")
        ):
            with ui.row().classes("items-baseline gap-2"):
                ui.label(row.name).on("click", partial(on_open, row.event_id)).classes(
                    "cursor-pointer text-negative text-weight-medium"
                )
                ui.label(_when(row.at)).classes("text-caption text-grey-7")
            if won is not None:
                with ui.row().classes("items-baseline gap-1 text-body2"):
                    ui.label("lost to")
                    ui.label(f"{won.name} at {won.position}").on(
                        "click", partial(on_open, won.event_id)
                    ).classes("cursor-pointer text-primary").props(
                        'data-testid="audit-winner"'
                    ).mark("audit-winner")
                    ui.label(f"from client {won.client_id}").classes("text-grey-7")
            else:
                ui.label(shown_text(row.error or "")).classes(
                    "text-body2 text-grey-8 wrap-anywhere"
                )


def config_card(web: WebApp, on_open: Open) -> None:
    """The configuration changes, newest first: which setting, from what to what, where."""
    with _card(
        "Configuration changes", "Flags and settings, as the log recorded them", "audit-config"
    ):
        LivePanel(
            "configuration changes",
            partial(reads.config_changes, web.manager),
            partial(_changes, web, on_open),
        )


def _changes(web: WebApp, on_open: Open, rows: list[Row]) -> None:
    if not rows:
        ui.label("No configuration change yet.").classes("text-grey-7")
        return
    for row in rows:
        change = reads.change_of(web.manager, row)
        with ui.row().classes("w-full items-baseline gap-x-2 gap-y-0"):
            ui.label(change.key).on("click", partial(on_open, change.event_id)).classes(
                "cursor-pointer font-mono text-primary wrap-anywhere"
            )
            ui.label(f"{_value(change.old)} → {_value(change.new)}").classes(
                "text-body2 wrap-anywhere min-w-0"
            )
            ui.space()
            ui.label(f"{change.source} · {_when(row.at)}").classes("text-caption text-grey-7")


def _value(value: object) -> str:
    if value is None:
        return "unset"
    return str(value).lower() if isinstance(value, bool) else shown_text(str(value))


def _when(at: str) -> str:
    return from_iso(at).strftime("%Y-%m-%d %H:%M UTC")
