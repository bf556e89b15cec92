"""Two instances of the app synced through a real sync server: a change made in one
browser appears in the other's."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, expect

from pjai.app import DataDir, Personas
from pjai.bench.syncserver import servers
from pjai.bench.webapp import SyncProcess, WebProcess
from pjai.sync.server import ServerDatabase
from tests.web.browser.conftest import screenshot


def test_a_switch_in_one_instance_shows_in_the_other(browser: Browser, tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'sync-server.db'}"
    with ServerDatabase.open(db_url) as database:
        token = database.tokens.create("shared", "write", "test")[0]
    here, there = DataDir(tmp_path / "here"), DataDir(tmp_path / "there")
    with (
        servers(db_url, tmp_path, 1) as (server,),
        SyncProcess(here.path, server.url, token, store_id="shared"),
        SyncProcess(there.path, server.url, token, store_id="shared"),
    ):
        with here.open() as manager:
            personas = Personas(manager)
            personas.create("Ada", activate=True)
            personas.create("Grace")
        with WebProcess(here.path) as first, WebProcess(there.path) as second:
            one = browser.new_context().new_page()
            other = browser.new_context().new_page()
            one.goto(first.url)
            other.goto(second.url)
            expect(other.get_by_test_id("persona-switch")).to_contain_text("Ada")
            one.get_by_test_id("persona-switch").click()
            one.locator(".q-menu .q-item", has_text="Grace").click()
            expect(one.get_by_test_id("persona-switch")).to_contain_text("Grace")
            expect(other.get_by_test_id("persona-switch")).to_contain_text("Grace")
            screenshot(other, "synced-instance")
            one.context.close()
            other.context.close()
