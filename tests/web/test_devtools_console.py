"""The devtools SQL console under load: tabs running long queries at once (no browser)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from nicegui.testing.user import User

from pjai.app.reads import devtools as reads
from pjai.web import WebApp
from tests.web.conftest import Held, long_work_across_visits, long_work_from_many_tabs, sees

pytestmark = pytest.mark.anyio


async def run_in_console(tab: User, sql: str = "SELECT name FROM personas") -> None:
    """Type ``sql`` into ``tab``'s console and press Run."""
    await tab.should_see(marker="sql-console")
    tab.find(marker="sql-console").clear().type(sql)
    tab.find(marker="sql-run").click()


async def open_and_run(tab: User) -> None:
    """Open the devtools on ``tab`` and run a query in its console."""
    await tab.open("/devtools")
    await run_in_console(tab)


async def run_twice(tab: User) -> None:
    """Run a query in ``tab``'s console, pressing Run again before the first run began."""
    await run_in_console(tab)
    tab.find(marker="sql-run").click()


def one_row(tab: User) -> bool:
    """Whether ``tab``'s console shows the one row its query read."""
    return sees(tab, "1 row in")


async def test_tabs_running_long_queries_leave_other_views_off_loop_work_going(
    web: WebApp, hold: Callable[[object, str], Held]
) -> None:
    web.services.personas.create("Ada")
    await long_work_from_many_tabs(
        web,
        hold(reads, "run_sql"),
        web.console,
        start=open_and_run,
        refused_in="sql-error",
        refusal=(
            f"the console is busy with {web.console.threads} queries; try again when one ends"
        ),
        finished=one_row,
        again=run_in_console,
    )


async def test_a_tab_runs_one_console_query_at_a_time_however_often_run_is_pressed(
    web: WebApp, hold: Callable[[object, str], Held]
) -> None:
    web.services.personas.create("Ada")
    # As many visits as the console has threads: each would take one, were it let.
    await long_work_across_visits(
        web,
        hold(reads, "run_sql"),
        web.console,
        page="/devtools",
        start=run_twice,
        visits=web.console.threads,
        refused_in="sql-error",
        refusal="this tab's last query is still running; try again when it ends",
        again=run_in_console,
        finished=one_row,
    )
