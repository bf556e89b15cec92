"""Devtools in a real browser: time travel to an early event and the diff to now."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from pjai.app import DataDir, Memories, Personas
from pjai.demo import seed
from tests.web.browser.conftest import screenshot, served


def test_time_travel_to_an_early_event_shows_that_state_and_the_diff_to_now(
    page: Page, tmp_path: Path
) -> None:
    data = DataDir(tmp_path / "data")
    with data.open() as manager:
        seed(manager)
        early = manager.head()
        [(personas_then,)] = manager.query("SELECT count(*) FROM personas")
        ada = Personas(manager).create("Ada", activate=True)
        Memories(manager).add(ada.id, "Ada wrote the first program")
        head = manager.head()
    with served(data.path) as url:
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
