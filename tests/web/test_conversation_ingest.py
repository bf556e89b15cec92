"""Making memories of a conversation under load: tabs asking at once (no browser)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from nicegui import ui
from nicegui.testing.user import User

from pjai.sql.repositories import MemoryFilter
from pjai.web import WebApp
from tests.web.conftest import Held, long_work_from_many_tabs, sees

pytestmark = pytest.mark.anyio


async def open_and_make(tab: User) -> None:
    """Open the conversations view on ``tab`` and press Make memories."""
    await tab.open("/conversations")
    await tab.should_see("My cat is called Miso.")
    tab.find(marker="make-memories").click()


def made(tab: User) -> bool:
    """Whether ``tab`` says what its run made (memories, or nothing new)."""
    return sees(tab, "Made 1 memory", kind=ui.label) or sees(tab, "Nothing new", kind=ui.label)


async def test_tabs_making_memories_at_once_leave_the_app_serving_the_others(
    web: WebApp, hold: Callable[[object, str], Held]
) -> None:
    # Making memories of a long conversation takes long: it runs off the event loop,
    # which every tab's page needs, one run at a time across all tabs.
    ada = web.services.personas.create("Ada", activate=True).id
    talk = web.services.conversations.start(ada, title="Facts")
    web.services.conversations.say(talk, "user", "My cat is called Miso.")
    await long_work_from_many_tabs(
        web,
        hold(web.services.memories, "ingest"),
        web.ingests,
        start=open_and_make,
        refused_in=None,
        refusal=(
            "No memories made: conversation ingest is busy with 1 ingest; try again when it ends"
        ),
        finished=made,
        again=lambda tab: tab.find(marker="make-memories").click(),
    )
    assert len(web.services.memories.list(MemoryFilter(persona_id=ada))) == 1
