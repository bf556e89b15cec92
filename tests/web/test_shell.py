"""The page around the views: navigation, persona switch, store-off banner."""

from __future__ import annotations

from pathlib import Path

import pytest
from nicegui import ElementFilter, ui
from nicegui.testing.user import User

from pjai.app import DataDir
from pjai.web import WebApp
from pjai.web.shell import STORE_OFF
from pjai.web.views import VIEWS
from tests.helpers import history, persona
from tests.web.conftest import simulated, until

pytestmark = pytest.mark.anyio


def switch_options(user: User) -> list[str]:
    """The names the persona switch offers now."""
    with user:
        found = ElementFilter(kind=ui.select, marker="persona-switch")
        return [name for select in found for name in select.options.values()]


async def test_the_navigation_lists_every_view(web: WebApp) -> None:
    async with simulated(web) as user:
        await user.open("/")
        for view in VIEWS:
            await user.should_see(view.title)
        assert [v.title for v in VIEWS] == [
            "Dashboard",
            "Personas",
            "Memories",
            "Conversations",
            "Audit trail",
            "Collaboration",
            "Devtools",
        ]


async def test_the_switch_follows_the_active_persona_and_activates_another(web: WebApp) -> None:
    personas = web.services.personas
    ada = personas.create("Ada", activate=True)
    grace = personas.create("Grace")
    async with simulated(web) as user:
        await user.open("/")
        await user.should_see(marker="persona-switch")
        switch = user.find(marker="persona-switch")
        assert next(iter(switch.elements)).value == ada.id
        switch.click()
        user.find("Grace").click()
        await user.should_see("Grace")
        assert personas.active() is not None
        assert personas.active().id == grace.id  # type: ignore[union-attr]


async def test_a_persona_made_elsewhere_appears_without_a_reload(web: WebApp) -> None:
    async with simulated(web) as user:
        await user.open("/")
        await user.should_see("no persona yet")
        web.services.personas.create("Hopper", activate=True)
        await user.should_see("Hopper")


async def test_with_the_store_off_a_banner_says_so(web: WebApp) -> None:
    web.services.personas.create("Ada", activate=True)
    async with simulated(web) as user:
        await user.open("/")
        await user.should_not_see(STORE_OFF)
        web.manager.set_flag("use_livestore", False)
        await user.should_see(STORE_OFF)
        web.services.personas.create("Lovelace")  # written to SQL, shown from SQL
        await until(
            lambda: "Lovelace" in switch_options(user), 'lambda: "Lovelace" in switch_options(user)'
        )


async def test_a_change_the_shared_order_rejects_is_told_with_what_won(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "synced")
    data.flags().set("sync", True)
    with WebApp(data) as web:
        store = web.manager.store
        assert store is not None
        web.manager.commit(persona("p1"))
        async with simulated(web) as user:
            await user.open("/")
            await user.should_see(marker="persona-switch")
            # Elsewhere p1 was made first: this instance's PersonaCreated loses.
            store.rebase(history([persona("p1")], client_id="other"))
            await user.should_see("Your change v1.PersonaCreated was rejected", retries=30)
            await user.should_see("v1.PersonaCreated from client …", retries=1)
