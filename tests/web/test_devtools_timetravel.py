"""Time travel under load: tabs replaying old positions at once (no browser)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from nicegui import ElementFilter
from nicegui.testing.user import User

from pjai.app.reads import devtools as reads
from pjai.web import WebApp
from tests.web.conftest import Held, long_work_across_visits, long_work_from_many_tabs

pytestmark = pytest.mark.anyio


def try_again(tab: User) -> None:
    """Press the Try again button under time travel's refusal."""
    tab.find(marker="timetravel-retry").click()


def shown_counts(tab: User) -> str:
    """The row counts time travel shows on ``tab``, as "table count" pairs."""
    with tab:
        areas = ElementFilter(marker="timetravel-counts", only_visible=True, local_scope=False)
        return " ".join(str(getattr(e, "text", "")) for area in areas for e in area.descendants())


def the_state(tab: User) -> bool:
    """Whether ``tab``'s time travel shows the state it replayed (Ada's persona)."""
    return "personas 1" in shown_counts(tab)


async def test_tabs_replaying_old_positions_leave_other_views_off_loop_work_going(
    web: WebApp, hold: Callable[[object, str], Held]
) -> None:
    web.services.personas.create("Ada")
    await long_work_from_many_tabs(
        web,
        hold(reads.PastStates, "view"),
        web.time_travel,
        start=lambda tab: tab.open("/devtools"),  # time travel, the first tab, replays the head
        refused_in="timetravel-error",
        refusal=(
            f"time travel is busy with {web.time_travel.threads} replays; try again when one ends"
        ),
        finished=the_state,
        again=try_again,
    )


async def test_a_tab_replays_one_position_at_a_time_across_visits(
    web: WebApp, hold: Callable[[object, str], Held]
) -> None:
    web.services.personas.create("Ada")
    await long_work_across_visits(
        web,
        hold(reads.PastStates, "view"),
        web.time_travel,
        page="/devtools",  # time travel, the first tab, replays the head on each visit
        visits=1,
        refused_in="timetravel-error",
        refusal="this tab's last replay is still running; try again when it ends",
        again=try_again,
        finished=the_state,
    )
