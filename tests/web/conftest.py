"""The web app under NiceGUI's simulated user: no browser, no server, real data."""

from __future__ import annotations

import asyncio
import inspect
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from nicegui import ElementFilter, ui
from nicegui.testing.user import User
from nicegui.testing.user_simulation import user_simulation

from pjai.app import DataDir
from pjai.web import WebApp
from pjai.web.heavy import HeavyWork
from pjai.web.shell import root


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def web(tmp_path: Path) -> Iterator[WebApp]:
    """The web app on a new data directory."""
    with WebApp(DataDir(tmp_path / "data")) as app:
        yield app


@asynccontextmanager
async def simulated(web: WebApp) -> AsyncIterator[User]:
    """A simulated user of ``web``'s pages."""
    async with user_simulation(root=partial(root, web)) as user:
        yield user


WAIT_S = 5.0
"""How long a page may take to show what a test is waiting for."""


async def until(
    check: Callable[[], bool], what: str = "the page to show it", within_s: float = WAIT_S
) -> None:
    """Let the event loop run until ``check()`` holds (an AssertionError from it counts
    as "not yet": the element is not on the page yet). Live results reach the page
    through the event loop, with no event a test could wait on."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            if check():
                return
        except AssertionError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within_s} s: {what}")
        await asyncio.sleep(0.02)


def by_testid(user: User, testid: str) -> ui.element:
    """The newest live element with ``data-testid=testid`` (a panel may have been rebuilt)."""
    found = [
        e
        for e in user.client.elements.values()
        if e.props.get("data-testid") == testid and not e.is_deleted
    ]
    assert found, f"nothing with data-testid={testid!r} on the page"
    return found[-1]


def set_value(user: User, testid: str, value: Any) -> None:
    """Set the value of the input with ``data-testid=testid``, as typing would."""
    element = by_testid(user, testid)
    with user.client:
        element.value = value  # type: ignore[attr-defined]


# -- heavy work under load ------------------------------------------------------------------

LOOP_THREADS = min(32, (os.cpu_count() or 1) + 4)
"""The threads of the event loop's default executor (asyncio's own formula), which the
views' light off-loop work (health readings, flags) runs on."""


class Held:
    """Calls of a function that each go on until the test lets them end, as long work
    on a big store would: a test then knows they all still run."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.started = 0
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._function = function

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.started += 1
        if not self.release.wait(4 * WAIT_S):
            raise AssertionError("the test never let its held calls end")
        return self._function(*args, **kwargs)


@pytest.fixture
def hold(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[object, str], Held]]:
    """``hold(owner, name)`` holds every call of ``owner.name`` (a module's function or
    a class's method) until its ``release`` is set (set at the end in any case)."""
    made: list[Held] = []

    def holding(owner: object, name: str) -> Held:
        held = Held(getattr(owner, name))

        def call(*args: Any, **kwargs: Any) -> Any:  # a function: a method binds its self
            return held(*args, **kwargs)

        monkeypatch.setattr(owner, name, call)
        made.append(held)
        return held

    try:
        yield holding
    finally:
        for held in made:
            held.release.set()


def another_tab(user: User) -> User:
    """Another tab of the same simulated app."""
    return User(user.http_client)


def shown(user: User, marker: str) -> str:
    """The text of the live elements marked ``marker`` on ``user``'s page."""
    with user:
        found = ElementFilter(marker=marker, local_scope=False)
        return " ".join(str(getattr(e, "text", "")) for e in found if not e.is_deleted)


def told(tabs: list[User], needle: str) -> list[str]:
    """The notifications holding ``needle`` that any of ``tabs`` got (a notification
    reaches the simulated user the test touched last, not always its own tab)."""
    return [m for tab in tabs for m in tab.notify.messages if needle in m]


def sees(user: User, content: str, kind: type[ui.element] = ui.element) -> bool:
    """Whether ``user``'s page shows an element of ``kind`` holding ``content`` now
    (``user.should_see`` without its waiting)."""
    with user:
        return any(ElementFilter(kind=kind, content=content, only_visible=True, local_scope=False))


Step = Callable[[User], object]
"""Something a test does on a tab: a plain function, or a coroutine function (awaited)."""


async def step(do: Step, tab: User) -> None:
    """Do ``do`` on ``tab``, awaiting it if it is a coroutine function."""
    result = do(tab)
    if inspect.isawaitable(result):
        await result


async def long_work_from_many_tabs(
    web: WebApp,
    held: Held,
    work: HeavyWork,
    *,
    start: Step,
    refused_in: str | None,
    refusal: str,
    finished: Callable[[User], int],
    again: Step,
) -> None:
    """As many tabs as the event loop has threads each ``start`` a piece of ``work``
    (calls of ``held``, not let end yet): the pieces beyond ``work``'s threads are
    refused as busy, the first refusal reading ``refusal``, each shown on its own tab in
    the element marked ``refused_in`` (None: told by a notification). Meanwhile a
    dashboard opened in another tab still draws its health card. Once the held pieces
    end, the tabs they ran for show them ``finished`` (how many finished pieces a tab
    shows), and a refused tab tries ``again`` and has its piece finished too."""
    async with simulated(web) as first:
        tabs = [first, *(another_tab(first) for _ in range(LOOP_THREADS - 1))]
        for tab in tabs:
            await step(start, tab)

        def refusals(users: list[User]) -> list[str]:
            if refused_in is None:
                return told(users, "busy")
            return [text for user in users if (text := shown(user, refused_in))]

        await until(
            lambda: held.started + sum("busy" in r for r in refusals(tabs)) == len(tabs),
            "every tab's piece started or refused",
        )
        dashboard = another_tab(first)
        await dashboard.open("/")
        # The health card reads off the event loop, as other views' light work does.
        await until(lambda: shown(dashboard, "store-status") == "ok", "the health card")
        assert not held.release.is_set()  # while every admitted piece still runs
        running = work.threads
        assert held.started == running
        everyone = [*tabs, dashboard]
        refused = refusals(everyone)
        assert len(refused) == len(tabs) - running
        assert refused[0] == refusal
        # A notification may reach another tab than the refused one: the last tab asked
        # when every thread was busy.
        retried = tabs[-1] if refused_in is None else next(t for t in tabs if shown(t, refused_in))
        held.release.set()

        def outcomes() -> int:
            return sum(finished(user) for user in everyone)

        await until(lambda: outcomes() == running, "the admitted pieces' outcomes")
        await until(lambda: work.running == 0, "the held pieces to end")
        await step(again, retried)
        await until(lambda: outcomes() == running + 1, "the outcome on trying again")


async def long_work_across_visits(
    web: WebApp,
    held: Held,
    work: HeavyWork,
    *,
    page: str,
    start: Step | None = None,
    visits: int,
    refused_in: str,
    refusal: str,
    again: Step,
    finished: Callable[[User], int],
) -> None:
    """A tab opens ``page`` and starts a piece of ``work`` there (a call of ``held``, not
    let end yet) by ``start`` (None: opening the page starts it); it leaves for the
    dashboard and comes back ``visits`` times, starting the work again each time, and is
    refused each time as the piece it started still runs, in the element marked
    ``refused_in`` reading ``refusal``. Once the held piece ends, the tab tries
    ``again`` and has its piece ``finished`` (shown once)."""
    async with simulated(web) as tab:
        await tab.open(page)
        if start is not None:
            await step(start, tab)
        await until(lambda: held.started == 1, "the first piece to start")
        # Leaving the page and coming back builds it anew, ready to start the work again.
        for _ in range(visits):
            tab.navigate.to("/")
            await tab.should_see(marker="store-status")
            tab.navigate.to(page)
            if start is not None:
                await step(start, tab)
            await until(lambda: "still running" in shown(tab, refused_in), "the refusal")
        assert held.started == 1
        assert shown(tab, refused_in) == refusal
        held.release.set()
        await until(lambda: work.running == 0, "the held piece to end")
        await step(again, tab)
        await until(lambda: finished(tab) == 1, "the outcome on trying again")
