"""Two people on two instances of one store, through a real sync server: each sees the
other in the collaboration view, and an edit one saves to a persona shows in the other's
form, field by field as stored."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, expect

from pjai.app import DataDir, Personas
from pjai.bench.syncserver import servers
from pjai.bench.webapp import SyncProcess, WebProcess
from pjai.sync.server import ServerDatabase
from tests.web.browser.conftest import screenshot


def test_two_people_see_each_other_and_each_others_edits(browser: Browser, tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'sync-server.db'}"
    with ServerDatabase.open(db_url) as database:
        token = database.tokens.create("shared", "write", "test")[0]
    here, there = DataDir(tmp_path / "here"), DataDir(tmp_path / "there")
    with (
        servers(db_url, tmp_path, 1) as (server,),
        SyncProcess(here.path, server.url, token, store_id="shared", name="laptop"),
        SyncProcess(there.path, server.url, token, store_id="shared", name="desk"),
    ):
        with here.open() as manager:
            Personas(manager).create("Ada", description="Reads papers", activate=True)
        with WebProcess(here.path) as first, WebProcess(there.path) as second:
            ada = browser.new_context().new_page()
            grace = browser.new_context().new_page()
            ada.goto(first.url + "/collaboration")
            grace.goto(second.url + "/collaboration")
            expect(ada.get_by_test_id("peer")).to_contain_text("desk")
            expect(grace.get_by_test_id("peer")).to_contain_text("laptop")

            ada.goto(first.url + "/personas")
            grace.goto(second.url + "/personas")
            theirs = grace.get_by_test_id("persona-form").locator('[data-setting="description"]')
            expect(theirs).to_have_value("Reads papers")
            mine = ada.get_by_test_id("persona-form").locator('[data-setting="description"]')
            mine.fill("Reads papers and writes reviews")
            ada.get_by_role("button", name="Save").click()
            expect(theirs).to_have_value("Reads papers and writes reviews")

            grace.goto(second.url + "/collaboration")
            expect(grace.get_by_test_id("others-change").first).to_contain_text("v1.PersonaUpdated")
            screenshot(grace, "collaboration")
            ada.context.close()
            grace.context.close()
