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
    Held,
    by_testid,
    long_work_from_many_tabs,
    sees,
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


async def open_and_preview(tab: User) -> None:
    """Open the explorer on ``tab`` and ask for the optimizer's preview."""
    await tab.open("/memories")
    await tab.should_see("Buried treasure")
    press(tab, "optimize")


def previewed(tab: User) -> bool:
    """Whether ``tab`` shows the optimizer's preview."""
    return sees(tab, "would change", kind=ui.label)


async def test_tabs_optimizing_at_once_leave_other_views_off_loop_work_going(
    web: WebApp, hold: Callable[[object, str], Held]
) -> None:
    persona_with_a_memory(web)
    await long_work_from_many_tabs(
        web,
        hold(reads, "optimize_preview"),
        web.optimizer,
        start=open_and_preview,
        refused_in=None,
        refusal=(
            f"Not previewed: the optimizer is busy with {web.optimizer.threads} optimizations; "
            "try again when one ends"
        ),
        finished=previewed,
        again=lambda tab: press(tab, "optimize"),
    )


async def test_a_tab_runs_one_optimization_at_a_time_however_often_apply_is_pressed(
    web: WebApp, hold: Callable[[object, str], Held]
) -> None:
    persona_with_a_memory(web)
    async with simulated(web) as tab:
        await open_and_preview(tab)
        await until(lambda: previewed(tab), "the preview")
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
