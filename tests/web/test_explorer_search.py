"""Searching from the explorer under load: tabs searching at once, and a tab pressing
Search again and again while its search runs (no browser)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from nicegui.testing.user import User
from nicegui.testing.user_interaction import UserInteraction

from pjai.app import Personas
from pjai.web import WebApp
from pjai.web.views.explorer_filters import FilterBar
from pjai.web.views.explorer_selection import Selection
from tests.web.conftest import (
    LOOP_THREADS,
    Held,
    another_tab,
    by_testid,
    long_work_from_many_tabs,
    set_value,
    shown,
    simulated,
    told,
    until,
)

pytestmark = pytest.mark.anyio


def persona_with_a_memory(web: WebApp) -> None:
    """An active persona with one memory about tea."""
    ada = Personas(web.manager).create("Ada", activate=True).id
    web.services.memories.add(ada, "Likes green tea")


def search(tab: User, text: str) -> None:
    """Search ``text`` on ``tab``'s explorer."""
    set_value(tab, "search-text", text)
    UserInteraction(tab, {by_testid(tab, "search-button")}, None).click()


async def open_and_search(tab: User) -> None:
    """Open the explorer on ``tab`` and search for tea."""
    await tab.open("/memories")
    await tab.should_see("Likes green tea")
    search(tab, "tea")


def found(tab: User) -> bool:
    """Whether ``tab`` says what its search found."""
    return shown(tab, "search-status").startswith("1 found by keyword search")


async def test_tabs_searching_at_once_leave_other_views_off_loop_work_going(
    web: WebApp, hold: Callable[[object, str], Held]
) -> None:
    persona_with_a_memory(web)
    await long_work_from_many_tabs(
        web,
        hold(web.services.memories, "search"),
        web.searches,
        start=open_and_search,
        refused_in=None,
        refusal=(
            f"Not searched: search is busy with {web.searches.threads} searches; "
            "try again when one ends"
        ),
        finished=found,
        again=lambda tab: search(tab, "tea"),
    )


async def test_a_tab_searching_again_and_again_keeps_no_other_tab_waiting(
    web: WebApp, hold: Callable[[object, str], Held]
) -> None:
    persona_with_a_memory(web)
    searches = hold(web.services.memories, "search")
    async with simulated(web) as tab:
        await open_and_search(tab)
        await until(lambda: searches.started == 1, "the first search to start")
        # Each press asks for another search while the first still runs: as many as
        # there are threads to search on. None starts meanwhile; the last is kept.
        texts = ["green " * (n + 1) + "tea" for n in range(LOOP_THREADS)]
        for text in texts:
            search(tab, text)
        assert shown(tab, "search-status") == "Searching (keyword)…"
        other = another_tab(tab)
        await open_and_search(other)
        await until(lambda: searches.started == 2, "the other tab's search to start")
        assert told([tab, other], "Not searched") == []
        searches.release.set()
        await until(lambda: found(other), "the other tab's outcome")
        # The first search's hits are not shown: the last one asked is searched then.
        last = f"1 found by keyword search for “{texts[-1]}”"
        await until(lambda: shown(tab, "search-status") == last, "the last search's outcome")
        assert searches.started == 3


async def test_a_filter_changed_while_the_tabs_search_runs_is_searched_when_it_ends(
    web: WebApp, hold: Callable[[object, str], Held], monkeypatch: pytest.MonkeyPatch
) -> None:
    persona_with_a_memory(web)
    searches = hold(web.services.memories, "search")
    handed: list[Selection] = []  # the selections the filter bar handed to the explorer
    show = FilterBar.show

    def shown_and_noted(bar: FilterBar, selection: Selection) -> None:
        handed.append(selection)
        show(bar, selection)

    monkeypatch.setattr(FilterBar, "show", shown_and_noted)
    async with simulated(web) as tab:
        await open_and_search(tab)
        await until(lambda: searches.started == 1, "the first search to start")
        # The person narrows the search to cold memories while it runs: the page may not
        # end up showing the first search's hits under a filter that leaves them out.
        set_value(tab, "filter-tiers", ["cold"])
        await until(lambda: any(s.tiers == ("cold",) for s in handed), "the change")
        searches.release.set()
        await until(
            lambda: shown(tab, "search-status").startswith("0 found by keyword search"),
            "the search under the changed filter",
        )
        assert told([tab], "Not searched") == []
        assert searches.started == 2
