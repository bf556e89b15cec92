"""The page around the views: navigation, persona switch, store-off banner."""

from __future__ import annotations

import pytest

from pjai.web import WebApp
from tests.web.conftest import simulated

pytestmark = pytest.mark.anyio


async def test_the_navigation_lists_every_view(web: WebApp) -> None:
    async with simulated(web) as user:
        await user.open("/")
        for title in ("Dashboard", "Personas", "Memories", "Conversations"):
            await user.should_see(title)
        await user.should_see("Audit trail")
