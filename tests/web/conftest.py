"""The web app under NiceGUI's simulated user: no browser, no server, real data."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from nicegui import ui
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
