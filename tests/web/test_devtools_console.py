"""The devtools SQL console under load: tabs running long queries at once (no browser)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from nicegui import ElementFilter
from nicegui.testing.user import User

from pjai.app.reads import devtools as reads
from pjai.hybrid import HybridDatabaseManager
from pjai.web import WebApp
from tests.web.conftest import WAIT_S, simulated, until

pytestmark = pytest.mark.anyio

LOOP_THREADS = min(32, (os.cpu_count() or 1) + 4)
"""The threads of the event loop's default executor (asyncio's own formula), which the
other views' reads and writes run on."""


class HeldQueries:
    """Console queries that each go on until the test lets them end, as a query that
    runs to its time limit would: a test then knows they all still run."""

    def __init__(self) -> None:
        self.started = 0
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._run_sql = reads.run_sql

    def run_sql(self, manager: HybridDatabaseManager, sql: str, cap: int = 500) -> Any:
        with self._lock:
            self.started += 1
        if not self.release.wait(4 * WAIT_S):
            raise AssertionError("the test never let its console queries end")
        return self._run_sql(manager, sql, cap)


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldQueries]:
    """Console queries held until ``release`` is set (set at the end in any case)."""
    queries = HeldQueries()
    monkeypatch.setattr(reads, "run_sql", queries.run_sql)
    try:
        yield queries
    finally:
        queries.release.set()


def another_tab(user: User) -> User:
    """Another tab of the same simulated app."""
    return User(user.http_client)


def shown(user: User, marker: str) -> str:
    """The text of the live elements marked ``marker`` on ``user``'s page."""
    with user:
        found = ElementFilter(marker=marker, local_scope=False)
        return " ".join(str(getattr(e, "text", "")) for e in found if not e.is_deleted)


async def run_in_console(tab: User, sql: str = "SELECT name FROM personas") -> None:
    """Type ``sql`` into ``tab``'s console and press Run."""
    await tab.should_see(marker="sql-console")
    tab.find(marker="sql-console").clear().type(sql)
    tab.find(marker="sql-run").click()


async def test_tabs_running_long_queries_leave_other_views_off_loop_work_going(
    web: WebApp, held: HeldQueries
) -> None:
    web.services.personas.create("Ada")
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
    web: WebApp, held: HeldQueries
) -> None:
    web.services.personas.create("Ada")
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
