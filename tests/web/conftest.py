"""The web app under NiceGUI's simulated user: no browser, no server, real data."""

from __future__ import annotations

import asyncio
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
