"""The devtools SQL console under load: tabs running long queries at once (no browser)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from nicegui.testing.user import User

from pjai.app.reads import devtools as reads
from pjai.web import WebApp
from tests.web.conftest import LOOP_THREADS, Held, another_tab, shown, simulated, until

pytestmark = pytest.mark.anyio


async def run_in_console(tab: User, sql: str = "SELECT name FROM personas") -> None:
    """Type ``sql`` into ``tab``'s console and press Run."""
    await tab.should_see(marker="sql-console")
    tab.find(marker="sql-console").clear().type(sql)
    tab.find(marker="sql-run").click()


async def test_tabs_running_long_queries_leave_other_views_off_loop_work_going(
    web: WebApp, hold: Callable[[object, str], Held]
) -> None:
    web.services.personas.create("Ada")
    held = hold(reads, "run_sql")
    async with simulated(web) as first:
        tabs = [first, *(another_tab(first) for _ in range(LOOP_THREADS - 1))]
        for tab in tabs:
            await tab.open("/devtools")
            await run_in_console(tab)

        def settled() -> bool:
            refused = sum(1 for tab in tabs if "busy" in shown(tab, "sql-error"))
            return held.started + refused == len(tabs)

        await until(settled, "every console query started or refused")
        dashboard = another_tab(first)
        await dashboard.open("/")
        # The health card reads off the event loop, as other views' work does.
        await until(lambda: shown(dashboard, "store-status") == "ok", "the health card")
        assert not held.release.is_set()  # while every admitted console query still runs
        running = web.console.threads
        assert held.started == running
        refused = [tab for tab in tabs if shown(tab, "sql-error")]
        assert len(refused) == len(tabs) - running
        assert shown(refused[0], "sql-error") == (
            f"the console is busy with {running} queries; try again when one ends"
        )
        held.release.set()
        for tab in tabs:
            if tab not in refused:
                await tab.should_see("1 row in")
        await run_in_console(refused[0])
        await refused[0].should_see("1 row in")


async def test_a_tab_runs_one_console_query_at_a_time_however_often_run_is_pressed(
    web: WebApp, hold: Callable[[object, str], Held]
) -> None:
    web.services.personas.create("Ada")
    held = hold(reads, "run_sql")
    async with simulated(web) as tab:
        await tab.open("/devtools")
        await run_in_console(tab)
        tab.find(marker="sql-run").click()  # pressed twice before the first run began
        await until(lambda: held.started == 1, "the first run to start")
        # Leaving the console and coming back builds it anew, with its button enabled.
        for _ in range(web.console.threads):
            tab.navigate.to("/")
            await tab.should_see(marker="store-status")
            tab.navigate.to("/devtools")
            await run_in_console(tab)
            await until(lambda: "still running" in shown(tab, "sql-error"), "the refusal")
        assert held.started == 1
        assert shown(tab, "sql-error") == (
            "this tab's last query is still running; try again when it ends"
        )
        held.release.set()
        await until(lambda: web.console.running == 0, "the held query to end")
        await run_in_console(tab)
        await tab.should_see("1 row in")
