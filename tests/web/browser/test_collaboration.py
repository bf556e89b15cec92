"""Two people on two instances of one store, through a real sync server: each sees the
other in the collaboration view, and an edit one saves to a persona shows in the other's
open form field by field, while what the other is typing stays."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, expect

from pjai.app import DataDir, Memories, Personas
from pjai.bench.syncserver import servers
from pjai.bench.webapp import SyncProcess, WebProcess
from pjai.sync.server import ServerDatabase
from tests.web.browser.conftest import Primary, screenshot

Instance = tuple[DataDir, dict[str, str]]


def two_instances(tmp_path: Path, primary: Primary) -> tuple[str, str, Instance, Instance]:
    """A sync server database with a write token for store ``shared``, and two data
    directories on the primary under test: the URL, the token, each with its environment."""
    db_url = f"sqlite:///{tmp_path / 'sync-server.db'}"
    with ServerDatabase.open(db_url) as database:
        token = database.tokens.create("shared", "write", "test")[0]
    env_here, env_there = primary(), primary()
    here = DataDir(tmp_path / "here", environ=env_here)
    there = DataDir(tmp_path / "there", environ=env_there)
    return db_url, token, (here, env_here), (there, env_there)


def test_two_people_see_each_other_and_each_others_edits(
    browser: Browser, tmp_path: Path, primary: Primary
) -> None:
    db_url, token, (here, env_here), (there, env_there) = two_instances(tmp_path, primary)
    with (
        servers(db_url, tmp_path, 1) as (server,),
        SyncProcess(here.path, server.url, token, store_id="shared", name="laptop", env=env_here),
        SyncProcess(there.path, server.url, token, store_id="shared", name="desk", env=env_there),
    ):
        with here.open() as manager:
            Personas(manager).create("Ada", description="Reads papers", activate=True)
        with (
            WebProcess(here.path, env=env_here) as first,
            WebProcess(there.path, env=env_there) as second,
        ):
            ada = browser.new_context().new_page()
            grace = browser.new_context().new_page()
            ada.goto(first.url + "/collaboration")
            grace.goto(second.url + "/devtools")
            grace.get_by_role("tab", name="Sync and flags").click()
            expect(grace.get_by_test_id("sync-elsewhere")).to_contain_text("pjai sync connect")
            expect(grace.locator(".q-tab-panels [class*='q-transition--']")).to_have_count(0)
            screenshot(grace, "devtools-sync")

            grace.goto(second.url + "/collaboration")
            expect(ada.get_by_test_id("peer")).to_contain_text("desk")
            expect(grace.get_by_test_id("peer")).to_contain_text("laptop")

            ada.goto(first.url + "/personas")
            grace.goto(second.url + "/personas")
            theirs = grace.get_by_test_id("persona-form").locator('[data-setting="description"]')
            expect(theirs).to_have_value("Reads papers")
            typing = grace.get_by_test_id("persona-form").locator('[data-setting="style"]')
            typing.fill("Short answers")  # Grace is typing, and has not saved
            mine = ada.get_by_test_id("persona-form").locator('[data-setting="description"]')
            mine.fill("Reads papers and writes reviews")
            ada.get_by_role("button", name="Save").click()
            expect(theirs).to_have_value("Reads papers and writes reviews")
            expect(grace.get_by_test_id("persona-form-merged")).to_contain_text(
                "Description was saved elsewhere"
            )
            expect(typing).to_have_value("Short answers")
            screenshot(grace, "persona-merged")
            grace.get_by_role("button", name="Save").click()
            expect(mine).to_have_value("Reads papers and writes reviews")
            ada_style = ada.get_by_test_id("persona-form").locator('[data-setting="style"]')
            expect(ada_style).to_have_value("Short answers")

            grace.goto(second.url + "/devtools")
            grace.get_by_role("tab", name="Sync and flags").click()
            expect(grace.get_by_test_id("sync-elsewhere")).to_contain_text("pjai sync connect")
            expect(grace.locator(".q-tab-panels [class*='q-transition--']")).to_have_count(0)
            screenshot(grace, "devtools-sync")

            grace.goto(second.url + "/collaboration")
            expect(grace.get_by_test_id("others-change").first).to_contain_text("v1.PersonaUpdated")
            expect(grace.get_by_test_id("peer")).to_contain_text("laptop")  # loaded, not "loading"
            screenshot(grace, "collaboration")
            ada.context.close()
            grace.context.close()


def test_a_conflict_reaches_the_person_whose_change_lost(
    browser: Browser, tmp_path: Path, primary: Primary
) -> None:
    db_url, token, (here, env_here), (there, env_there) = two_instances(tmp_path, primary)
    with servers(db_url, tmp_path, 1) as (server,):

        def syncing(data: DataDir, env: dict[str, str]) -> SyncProcess:
            return SyncProcess(data.path, server.url, token, store_id="shared", env=env)

        with syncing(here, env_here):
            with here.open() as manager:
                ada = Personas(manager).create("Ada", activate=True)
            with syncing(there, env_there), WebProcess(there.path, env=env_there) as web:
                grace = browser.new_context().new_page()
                grace.goto(web.url + "/personas")
                expect(grace.get_by_test_id("persona-row")).to_contain_text("Ada")
                grace.context.close()
            # Grace is offline now: she adds a memory to Ada while Ada is deleted here.
            with there.open() as manager:
                Memories(manager).add(ada.id, "Grace's note on Ada")
            with here.open() as manager:
                Personas(manager).delete(ada.id)
            with WebProcess(there.path, env=env_there) as web:
                grace = browser.new_context().new_page()
                grace.goto(web.url + "/")
                expect(grace.get_by_test_id("persona-switch")).to_be_visible()
                with syncing(there, env_there):  # back online: the shared order decides
                    notice = grace.get_by_text("Your change v1.MemoryAdded was rejected")
                    expect(notice).to_be_visible(timeout=30_000)
                    expect(notice).to_contain_text("v1.PersonaDeleted from client")
                    expect(grace.locator(".q-notification[class*='-enter-active']")).to_have_count(
                        0
                    )
                    screenshot(grace, "conflict-notice")
                grace.context.close()
