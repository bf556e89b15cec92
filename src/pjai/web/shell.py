"""The page around every view: header with the persona switch, navigation, the banner
shown while the reactive store is off, and the content area the views fill."""

from __future__ import annotations

from functools import partial

from nicegui import ui

from pjai.app.display import shown_text
from pjai.app.reads import audit as audit_reads
from pjai.app.reads import personas as persona_reads
from pjai.store import Row
from pjai.web.app import WebApp
from pjai.web.auth import LOGOUT_PATH
from pjai.web.live import LivePanel, tell_failures
from pjai.web.views import VIEWS, View

__all__ = ["BANNER_CHECK_S", "STORE_OFF", "root"]

BANNER_CHECK_S = 0.5
"""How often the page checks whether the reactive store is on."""

STORE_OFF = (
    "The reactive store is switched off (use_livestore false): views read from the SQL "
    "primary and follow its commits, this app's and other processes'. "
    "`pjai flags set use_livestore true` switches it back on."
)


def root(web: WebApp) -> None:
    """Build the page: header, navigation, banner, and the current view."""
    ui.colors(primary="#3949ab")
    tell_failures()
    # Open beside the page on a wide screen; on a narrow one, over it when asked (menu).
    drawer = ui.left_drawer(value=None, bordered=True).props("width=210")
    with drawer, ui.list().classes("w-full").props("padding"):
        for view in VIEWS:
            _nav_item(view)
    with ui.header().classes("items-center gap-4 px-4"):
        menu = ui.button(icon="menu", on_click=drawer.toggle)
        menu.props('flat round dense color=white aria-label="Menu" data-testid="menu"')
        ui.label("PJai").classes("text-h6 text-weight-bold")
        ui.space()
        with ui.row().classes("items-center"):
            LivePanel(
                "persona switch",
                partial(persona_reads.choices, web.manager),
                partial(_persona_switch, web),
            ).classes("w-auto")
        if web.login_required:
            _sign_out()
    banner = ui.label(STORE_OFF).classes("w-full bg-amber-2 q-pa-sm rounded")
    banner.props('data-banner="store-off"')
    banner.set_visibility(not web.manager.use_livestore)

    def follow_switch() -> None:
        # The switch can flip from another process (flags.json); the watch thread
        # follows it, and this shows where the views now read from.
        banner.set_visibility(not web.manager.use_livestore)

    ui.timer(BANNER_CHECK_S, follow_switch)
    ui.sub_pages({view.path: partial(view.build, web) for view in VIEWS}).classes("w-full")
    if web.manager.syncing:
        _tell_conflicts(web)


def _sign_out() -> None:
    # A form the browser posts itself: signing out takes a POST from this app's page.
    with ui.element("form").props(f'method=post action="{LOGOUT_PATH}"'):
        leave = ui.button("Sign out", icon="logout")
        leave.props('type=submit flat color=white data-testid="sign-out"')


def _nav_item(view: View) -> None:
    with ui.item(on_click=lambda: ui.navigate.to(view.path)).props("clickable"):
        with ui.item_section().props("avatar"):
            ui.icon(view.icon)
        with ui.item_section():
            ui.label(view.title)


def _persona_switch(web: WebApp, rows: list[Row]) -> None:
    choices = persona_reads.persona_choices(rows)
    if not choices:
        ui.label("no persona yet").classes("text-grey-3")
        return
    current = persona_reads.active(rows)

    def switch(event: object) -> None:
        chosen = getattr(event, "value", None)
        if chosen and (current is None or chosen != current.id):
            web.services.personas.activate(chosen)

    ui.select(
        {p.id: shown_text(p.name) for p in choices},
        value=current.id if current else None,
        label="Active persona",
        on_change=switch,
    ).mark("persona-switch").props(
        'dense dark outlined options-dark=false data-testid="persona-switch"'
    ).classes("min-w-[14rem]")


def _tell_conflicts(web: WebApp) -> None:
    """Tell the person when the sync server's order rejects one of this instance's
    changes, and which change won (the audit trail keeps them all)."""
    told: set[str] = set()
    first = True

    def arrived(rows: list[Row]) -> None:
        nonlocal first
        new = [r for r in rows if r.event_id not in told]
        told.update(r.event_id for r in rows)
        if first:  # what was rejected before this page opened is in the audit trail
            first = False
            return
        for row in new:
            winner = audit_reads.winner_of(row.error)
            won = f"; {winner.name} from client …{winner.client_id[-8:]} won" if winner else ""
            ui.notify(
                f"Your change {row.name} was rejected by the shared order{won}. "
                "The audit trail shows both.",
                type="warning",
                multi_line=True,
                close_button=True,
                timeout=0,
            )

    with ui.element("div").classes("hidden"):
        LivePanel("conflicts", partial(audit_reads.conflicts, web.manager, limit=20), arrived)
