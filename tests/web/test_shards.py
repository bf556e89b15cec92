"""The web app on several SQL shards with the reactive store off: every page reads
across the shards (no browser)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from nicegui import ui
from nicegui.testing.user import User

from pjai.app import DataDir
from pjai.schema import PersonaActivated
from pjai.sql.shards import HashRing
from pjai.web import WebApp
from tests.helpers import memory, persona
from tests.web.conftest import by_testid, simulated, until
from tests.web.test_dashboard import figure_shows

pytestmark = pytest.mark.anyio

RING = HashRing(2)
ANN = next(f"ann-{i}" for i in range(100) if RING.shard_of(f"ann-{i}") == 0)
BOB = next(f"bob-{i}" for i in range(100) if RING.shard_of(f"bob-{i}") == 1)
REFUSED = "cannot follow several SQL shards"


@pytest.fixture
def sharded(tmp_path: Path) -> Iterator[WebApp]:
    """The web app on two SQLite shards, the store off: Ann on the first with one
    memory, Bob (active) on the second with two."""
    urls = " ".join(f"sqlite:///{tmp_path / f'shard{i}.db'}" for i in range(2))
    environ = {"PJAI_USE_LIVESTORE": "false", "PJAI_SQL_SHARDS": urls}
    with WebApp(DataDir(tmp_path / "data", environ=environ)) as web:
        manager = web.manager
        assert not manager.use_livestore
        assert len(manager.shards) == 2
        manager.commit(persona(ANN, name="Ann"), persona(BOB, name="Bob"))
        manager.commit(PersonaActivated(persona_id=BOB))
        manager.commit(
            memory("ann-tea", ANN, name="Ann likes tea"),
            memory("bob-cello", BOB, name="Bob plays the cello", tier="hot"),
            memory("bob-dawn", BOB, name="Bob walks at dawn"),
        )
        yield web


def _switch_options(user: User) -> list[str]:
    switch = by_testid(user, "persona-switch")
    assert isinstance(switch, ui.select)
    return list(switch.options.values()) if isinstance(switch.options, dict) else []


async def test_the_dashboard_counts_every_shard_and_follows_commits(sharded: WebApp) -> None:
    async with simulated(sharded) as user:
        await user.open("/")
        await figure_shows(user, "persona-count", "2")
        await figure_shows(user, "memory-count-all", "3")
        await figure_shows(user, "memory-count", "2")  # Bob's
        await until(lambda: _switch_options(user) == ["Ann", "Bob"], "both personas to pick")
        await user.should_not_see(REFUSED)
        sharded.manager.commit(memory("ann-sea", ANN))
        await figure_shows(user, "memory-count-all", "4")
        sharded.manager.commit(persona("cy", name="Cy"))
        await figure_shows(user, "persona-count", "3")


async def test_the_personas_page_lists_every_persona(sharded: WebApp) -> None:
    async with simulated(sharded) as user:
        await user.open("/personas")
        await user.should_see(marker=f"persona-{ANN}")
        await user.should_see(marker=f"persona-{BOB}")
        await user.should_not_see(REFUSED)


async def test_a_personas_memories_and_conversations_show(sharded: WebApp) -> None:
    talk = sharded.services.conversations.start(BOB, title="Music")
    sharded.services.conversations.say(talk, "user", "Which piece today?")
    async with simulated(sharded) as user:
        await user.open("/memories")
        await user.should_see("Bob plays the cello")
        await user.should_not_see("Ann likes tea")
        await user.should_not_see(REFUSED)
        await user.open("/conversations")
        await user.should_see("Music")
        await user.should_see("Which piece today?")
        await user.should_not_see(REFUSED)
        sharded.services.conversations.say(talk, "assistant", "The Bach suite.")
        await user.should_see("The Bach suite.")
