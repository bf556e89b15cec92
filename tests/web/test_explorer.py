"""The memory explorer under a simulated user: filter, search, detail, edit, delete and
restore, live rows, bookmarks, the timeline, and the optimizer's preview."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nicegui import ui
from nicegui.testing.user import User

from pjai.app import Personas
from pjai.app.reads import memories as reads
from pjai.web import WebApp
from pjai.web.views.explorer_selection import Selection, format_time, parse_time
from pjai.web.views.explorer_table import MemoryTable
from pjai.web.views.explorer_timeline import bucket_range
from tests.web.conftest import simulated

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def _persona(web: WebApp, name: str = "Ada") -> str:
    return Personas(web.manager).create(name, activate=True).id


def _add(web: WebApp, persona_id: str, name: str, **fields: Any) -> str:
    fields.setdefault("occurred_at", T0)
    change = web.services.memories.add(persona_id, f"{name}: content", name=name, **fields)
    return change.memory.id


def _table(user: User) -> MemoryTable:
    found = user.find(marker="explorer-table").elements
    (table,) = found
    assert isinstance(table, MemoryTable)
    return table


def _total(user: User) -> int:
    (label,) = [
        e for e in user.find(kind=ui.label).elements if e.props.get("data-testid") == "memory-total"
    ]
    return int(label.text)


async def _until(check: Callable[[], bool], user: User) -> None:
    """Wait (on the event loop) until ``check()`` holds, for a few seconds at most."""
    await user.should_see(kind=ui.element, marker="explorer-table")  # page is up
    for _ in range(300):
        if check():
            return
        await _tick()
    assert check(), "the condition did not hold in time"


async def _tick() -> None:
    import asyncio

    await asyncio.sleep(0.01)


def _names(user: User) -> list[str]:
    return [row["name"] for row in _table(user).rows]


async def test_the_table_lists_the_active_personas_memories_with_their_total(
    web: WebApp,
) -> None:
    ada = _persona(web)
    other = Personas(web.manager).create("Basil").id
    _add(web, ada, "Likes green tea", importance=0.9)
    _add(web, ada, "Walks at dawn", importance=0.4)
    _add(web, other, "Writes poems")
    async with simulated(web) as user:
        await user.open("/memories")
        await user.should_see("Likes green tea")
        await user.should_see("Walks at dawn")
        await user.should_not_see("Writes poems")
        assert _names(user) == ["Likes green tea", "Walks at dawn"]  # importance first
        assert _total(user) == 2
