"""Live panels: loading state, error boundary, retry, cleanup."""

from __future__ import annotations

import pytest
from nicegui import ui
from nicegui.testing.user_simulation import user_simulation

from pjai.app.reads import personas as persona_reads
from pjai.errors import NotFoundError
from pjai.store import LiveQuery, Row
from pjai.web import LivePanel, WebApp
from pjai.web.live import tell_failures

pytestmark = pytest.mark.anyio


async def test_a_failing_panel_shows_its_error_and_the_others_go_on(web: WebApp) -> None:
    failing = [True]

    def source() -> LiveQuery:
        if failing[0]:
            raise RuntimeError("the query broke")
        return persona_reads.choices(web.manager)

    def names(rows: list[Row]) -> None:
        ui.label("names: " + ", ".join(r.name for r in rows))

    panels: list[LivePanel] = []

    def page() -> None:
        panels.append(LivePanel("broken", source, names))
        panels.append(LivePanel("working", lambda: persona_reads.choices(web.manager), names))

    web.services.personas.create("Ada")
    async with user_simulation(root=page) as user:
        await user.open("/")
        await user.should_see("broken: the query broke")
        await user.should_see("names: Ada")
        web.services.personas.create("Grace")
        await user.should_see("names: Ada, Grace")  # the working panel follows
        failing[0] = False
        user.find("Retry").click()
        await user.should_not_see("broken: the query broke")
        assert panels[0].renders == 1


async def test_a_panel_whose_render_fails_says_so(web: WebApp) -> None:
    def render(rows: list[Row]) -> None:
        raise ValueError("cannot draw this")

    def page() -> None:
        LivePanel("chart", lambda: persona_reads.choices(web.manager), render)

    async with user_simulation(root=page) as user:
        await user.open("/")
        await user.should_see("chart: cannot draw this")


async def test_a_deleted_panel_stops_listening(web: WebApp) -> None:
    holder: list[ui.column] = []

    def page() -> None:
        with ui.column() as outer:
            LivePanel("watched", lambda: persona_reads.choices(web.manager), lambda rows: None)
        holder.append(outer)

    async with user_simulation(root=page) as user:
        await user.open("/")
        await user.should_see(kind=LivePanel)
        store = web.manager.store
        assert store is not None
        watched = store.live_queries
        holder[0].clear()
        assert store.live_queries == watched - 1


async def test_an_error_a_handler_lets_through_is_shown(web: WebApp) -> None:
    def refuse() -> None:
        raise NotFoundError("memory 01ab… does not exist (deleted elsewhere?)")

    def page() -> None:
        tell_failures()
        ui.button("Open", on_click=refuse)

    async with user_simulation(root=page) as user:
        await user.open("/")
        user.find("Open").click()
        await user.should_see("memory 01ab… does not exist (deleted elsewhere?)")
