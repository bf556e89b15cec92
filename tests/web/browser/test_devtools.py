"""Devtools in a real browser, over SQLite and PostgreSQL primaries: time travel to an
early event and the diff to now, the SQL console."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from pjai.app import DataDir, Memories, Personas
from pjai.demo import seed
from tests.web.browser.conftest import Primary, screenshot, served


def test_time_travel_to_an_early_event_shows_that_state_and_the_diff_to_now(
    page: Page, tmp_path: Path, primary: Primary
) -> None:
    env = primary()
    data = DataDir(tmp_path / "data", environ=env)
    with data.open() as manager:
        seed(manager)
        early = manager.head()
        [(personas_then,)] = manager.query("SELECT count(*) FROM personas")
        ada = Personas(manager).create("Ada", activate=True)
        Memories(manager).add(ada.id, "Ada wrote the first program")
        head = manager.head()
    with served(data.path, env=env) as url:
        page.goto(f"{url}/devtools")
        counts = page.get_by_test_id("timetravel-counts")
        expect(page.get_by_test_id("timetravel-event")).to_contain_text(f"event {head}:")
        position = page.get_by_test_id("timetravel-position")
        position.fill(str(early))
        position.press("Enter")
        expect(page.get_by_test_id("timetravel-event")).to_contain_text(f"event {early}: ")
        expect(counts.get_by_test_id("count-personas")).to_have_text(f"personas{personas_then}")
        diff = page.get_by_test_id("timetravel-diff")
        expect(diff).to_contain_text(f"from event {early} to event {head}")
        expect(diff).to_contain_text("personas: 1 added")
        expect(diff).to_contain_text("memories: 1 added")
        expect(diff).to_contain_text("Ada wrote the first program")
        screenshot(page, "devtools")

        page.get_by_role("tab", name="SQL console").click()
        console = page.get_by_test_id("sql-console")
        console.fill("SELECT content FROM memories WHERE content LIKE 'Ada wrote%'")
        page.get_by_test_id("sql-run").click()
        result = page.get_by_test_id("sql-result")
        expect(result).to_contain_text("1 row in")
        expect(result.get_by_role("cell", name="Ada wrote the first program")).to_be_visible()

        page.get_by_role("tab", name="Sync and flags").click()
        expect(page.get_by_test_id("sync-connection")).to_contain_text("standalone")
        expect(page.get_by_test_id("flag-use_livestore")).to_be_visible()
