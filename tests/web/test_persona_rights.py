"""A persona's data exported for its data subject, and erased for good, from the
personas view under load: tabs asking at once (no browser)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from nicegui.testing.user import User

from pjai.web import WebApp
from pjai.web.views import personas as personas_view
from tests.web.conftest import (
    LOOP_THREADS,
    Held,
    another_tab,
    long_work_from_many_tabs,
    shown,
    simulated,
    told,
    until,
)

pytestmark = pytest.mark.anyio


def downloads(tabs: list[User]) -> int:
    """How many downloads ``tabs`` were sent."""
    return sum(len(tab.download.http_responses) for tab in tabs)


async def health_card_shows(first: User) -> User:
    """A tab on the dashboard once its health card, read off the event loop, shows."""
    dashboard = another_tab(first)
    await dashboard.open("/")
    await until(lambda: shown(dashboard, "store-status") == "ok", "the health card")
    return dashboard


async def erase(tab: User, persona_id: str, name: str) -> None:
    """Ask ``tab`` to erase the persona, its name typed."""
    tab.find(marker=f"persona-erase-{persona_id}").click()
    await tab.should_see(marker="erase-confirm")
    (button,) = tab.find(marker="erase-confirm").elements
    tab.find(marker="erase-name").type(name)
    await until(lambda: button.enabled, "the erase button enabled")
    tab.find(marker="erase-confirm").click()


async def test_tabs_exporting_a_persona_at_once_leave_other_views_off_loop_work_going(
    web: WebApp, hold: Callable[[object, str], Held]
) -> None:
    ada = web.services.personas.create("Ada", activate=True)
    assert web.subject_exports.threads == 1

    def export(tab: User) -> None:
        tab.find(marker=f"persona-export-{ada.id}").click()

    async def open_and_export(tab: User) -> None:
        await tab.open("/personas")
        await tab.should_see(marker=f"persona-{ada.id}")
        export(tab)

    await long_work_from_many_tabs(
        web,
        hold(personas_view, "export_subject"),
        web.subject_exports,
        start=open_and_export,
        refused_in=None,
        refusal="Not exported: data subject export is busy with 1 export; try again when it ends",
        finished=lambda tab: downloads([tab]),
        again=export,
    )


async def test_a_tab_exports_one_persona_at_a_time_however_often_it_asks(
    web: WebApp, hold: Callable[[object, str], Held]
) -> None:
    ada = web.services.personas.create("Ada", activate=True)
    exports = hold(personas_view, "export_subject")
    async with simulated(web) as tab:
        await tab.open("/personas")
        await tab.should_see(marker=f"persona-{ada.id}")
        tab.find(marker=f"persona-export-{ada.id}").click()
        await until(lambda: exports.started == 1, "the export to start")
        tab.find(marker=f"persona-export-{ada.id}").click()
        await until(lambda: bool(told([tab], "still running")), "the refusal")
        assert exports.started == 1
        assert told([tab], "still running") == [
            "Not exported: this tab's last export is still running; try again when it ends"
        ]
        exports.release.set()
        await until(lambda: downloads([tab]) == 1, "the export's download")


async def test_tabs_erasing_at_once_leave_other_views_off_loop_work_going(
    web: WebApp, hold: Callable[[object, str], Held]
) -> None:
    ada = web.services.personas.create("Ada", activate=True)
    erasures = hold(personas_view, "erase_persona")
    async with simulated(web) as first:
        tabs = [first, *(another_tab(first) for _ in range(LOOP_THREADS - 1))]
        for tab in tabs:
            await tab.open("/personas")
            await tab.should_see(marker=f"persona-{ada.id}")
            await erase(tab, ada.id, "Ada")
        await until(
            lambda: erasures.started + len(told(tabs, "busy")) == len(tabs),
            "every erasure started or refused",
        )
        dashboard = await health_card_shows(first)
        assert not erasures.release.is_set()  # while the admitted erasure still runs
        assert erasures.started == web.erasures.threads == 1
        refusals = told([*tabs, dashboard], "busy")
        assert len(refusals) == len(tabs) - 1
        assert refusals[0] == (
            "Not erased: persona erasure is busy with 1 erasure; try again when it ends"
        )
        assert web.services.personas.find(ada.id) is not None  # the refused erased nothing
        erasures.release.set()
        await until(lambda: bool(told([*tabs, dashboard], "Erased Ada")), "the erasure's proof")
        await until(lambda: web.erasures.running == 0, "the erasure to end")
    assert web.services.personas.find(ada.id) is None
