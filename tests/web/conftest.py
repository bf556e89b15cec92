"""The web app under NiceGUI's simulated user: no browser, no server, real data."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import pytest
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
