"""Optimizing from the explorer under load: tabs previewing and applying at once (no
browser)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from nicegui import ui
from nicegui.testing.user import User
from nicegui.testing.user_interaction import UserInteraction

from pjai.app import Personas
from pjai.app.reads import memories as reads
from pjai.web import WebApp
from tests.web.conftest import (
    LOOP_THREADS,
    Held,
    another_tab,
    by_testid,
    shown,
    simulated,
    told,
    until,
)

pytestmark = pytest.mark.anyio


def press(tab: User, testid: str) -> None:
    """Press the button with ``data-testid=testid`` on ``tab``."""
    UserInteraction(tab, {by_testid(tab, testid)}, None).click()


def persona_with_a_memory(web: WebApp) -> str:
    """An active persona with one memory in the wrong tier, so that a run moves it."""
    ada = Personas(web.manager).create("Ada", activate=True).id
    web.services.memories.add(ada, "Buried treasure", tier="cold", pinned=False, importance=1.0)
    return ada


async def test_tabs_optimizing_at_once_leave_other_views_off_loop_work_going(
    web: WebApp, hold: Callable[[object, str], Held]
) -> None:
    persona_with_a_memory(web)
    previews = hold(reads, "optimize_preview")
    async with simulated(web) as first:
        tabs = [first, *(another_tab(first) for _ in range(LOOP_THREADS - 1))]
        for tab in tabs:
            await tab.open("/memories")
            await tab.should_see("Buried treasure")
            press(tab, "optimize")
        await until(
            lambda: previews.started + len(told(tabs, "busy")) == len(tabs),
            "every preview started or refused",
        )
        dashboard = another_tab(first)
        await dashboard.open("/")
        await until(lambda: shown(dashboard, "store-status") == "ok", "the health card")
        assert not previews.release.is_set()  # while every admitted preview still runs
        running = web.optimizer.threads
        assert previews.started == running
        refusals = told([*tabs, dashboard], "busy")
        assert len(refusals) == len(tabs) - running
        assert refusals[0] == (
            f"Not previewed: the optimizer is busy with {running} optimizations; "
            "try again when one ends"
        )
        previews.release.set()
        await until(lambda: web.optimizer.running == 0, "the previews to end")
        opened = tabs[-1]
        press(opened, "optimize")
        await opened.should_see(kind=ui.label, marker=None, content="would change")


async def test_a_tab_runs_one_optimization_at_a_time_however_often_apply_is_pressed(
    web: WebApp, hold: Callable[[object, str], Held]
) -> None:
    persona_with_a_memory(web)
    async with simulated(web) as tab:
        await tab.open("/memories")
        await tab.should_see("Buried treasure")
        press(tab, "optimize")
        await tab.should_see(kind=ui.label, marker=None, content="would change")
        runs = hold(web.services.memories, "optimize")
        press(tab, "optimize-apply")
        await until(lambda: runs.started == 1, "the run to start")
        press(tab, "optimize-apply")
        await until(lambda: bool(told([tab], "still running")), "the refusal")
        assert runs.started == 1
        assert told([tab], "still running") == [
            "Not optimized: this tab's last optimization is still running; try again when it ends"
        ]
        runs.release.set()
        await until(lambda: bool(told([tab], "Optimized: 1 memories moved")), "the run's outcome")
