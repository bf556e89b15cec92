"""Time travel under load: tabs replaying old positions at once (no browser)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from nicegui.testing.user import User

from pjai.app.reads import devtools as reads
from pjai.web import WebApp
from tests.web.conftest import (
    LOOP_THREADS,
    Held,
    another_tab,
    shown,
    simulated,
    until,
)

pytestmark = pytest.mark.anyio


def try_again(tab: User) -> None:
    """Press the Try again button under time travel's refusal."""
    tab.find(marker="timetravel-retry").click()


async def test_tabs_replaying_old_positions_leave_other_views_off_loop_work_going(
    web: WebApp, hold: Callable[[object, str], Held]
) -> None:
    web.services.personas.create("Ada")
    replays = hold(reads.PastStates, "view")
    async with simulated(web) as first:
        tabs = [first, *(another_tab(first) for _ in range(LOOP_THREADS - 1))]
        for tab in tabs:
            await tab.open("/devtools")  # time travel, the first tab, replays the head

        def settled() -> bool:
            refused = sum(1 for tab in tabs if "busy" in shown(tab, "timetravel-error"))
            return replays.started + refused == len(tabs)

        await until(settled, "every replay started or refused")
        dashboard = another_tab(first)
        await dashboard.open("/")
        # The health card reads off the event loop, as other views' light work does.
        await until(lambda: shown(dashboard, "store-status") == "ok", "the health card")
        assert not replays.release.is_set()  # while every admitted replay still runs
        running = web.time_travel.threads
        assert replays.started == running
        refused = [tab for tab in tabs if shown(tab, "timetravel-error")]
        assert len(refused) == len(tabs) - running
        assert shown(refused[0], "timetravel-error") == (
            f"time travel is busy with {running} replays; try again when one ends"
        )
        replays.release.set()
        for tab in tabs:
            if tab not in refused:
                await until(lambda tab=tab: "personas 1" in shown_counts(tab), "the state")
        try_again(refused[0])
        await until(lambda: "personas 1" in shown_counts(refused[0]), "the state on trying again")


def shown_counts(tab: User) -> str:
    """The row counts time travel shows on ``tab``, as "table count" pairs."""
    with tab:
        [area] = tab.find(marker="timetravel-counts").elements
        return " ".join(str(getattr(e, "text", "")) for e in area.descendants())


async def test_a_tab_replays_one_position_at_a_time_across_visits(
    web: WebApp, hold: Callable[[object, str], Held]
) -> None:
    web.services.personas.create("Ada")
    replays = hold(reads.PastStates, "view")
    async with simulated(web) as tab:
        await tab.open("/devtools")
        await until(lambda: replays.started == 1, "the first replay to start")
        # Leaving devtools and coming back builds time travel anew, which replays again.
        tab.navigate.to("/")
        await tab.should_see(marker="store-status")
        tab.navigate.to("/devtools")
        await until(lambda: "still running" in shown(tab, "timetravel-error"), "the refusal")
        assert replays.started == 1
        assert shown(tab, "timetravel-error") == (
            "this tab's last replay is still running; try again when it ends"
        )
        replays.release.set()
        await until(lambda: web.time_travel.running == 0, "the held replay to end")
        try_again(tab)
        await until(lambda: "personas 1" in shown_counts(tab), "the state on trying again")
