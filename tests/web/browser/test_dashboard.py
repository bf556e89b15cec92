"""The dashboard in a real browser: figures, a drawn chart, and a commit made by
another process reaching the memory count."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from pjai.app import DataDir, Memories, Personas
from pjai.demo import seed
from pjai.hybrid import HybridDatabaseManager
from tests.web.browser.conftest import screenshot, served


def memories_of(manager: HybridDatabaseManager, persona_id: str) -> int:
    """The persona's live memories, counted."""
    rows = manager.query(
        "SELECT count(*) AS n FROM memories WHERE persona_id = :p AND deleted_at IS NULL",
        {"p": persona_id},
    )
    return int(rows[0].n)


def test_the_dashboard_shows_the_demo_data_and_follows_a_commit(page: Page, tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    with data.open() as manager:
        seed(manager)
        active = Personas(manager).active()
        assert active is not None
        personas = len(Personas(manager).list())
        count = memories_of(manager, active.id)
    with served(data.path) as url:
        page.goto(url)
        expect(page.get_by_test_id("persona-count")).to_have_text(str(personas))
        expect(page.get_by_test_id("memory-count")).to_have_text(str(count))
        expect(page.get_by_test_id("health-score")).to_be_visible()
        expect(page.get_by_test_id("store-status")).to_have_text("ok")
        # ECharts draws on a canvas once the chart has data.
        chart = page.locator('[data-chart="tier distribution"] canvas')
        expect(chart).to_be_visible()
        box = chart.bounding_box()
        assert box is not None
        assert box["width"] > 100
        assert box["height"] > 100
        with data.open() as manager:
            Memories(manager).add(active.id, "Keeps a notebook of open questions")
        expect(page.get_by_test_id("memory-count")).to_have_text(str(count + 1))
        screenshot(page, "dashboard")


def test_a_new_directory_shows_the_welcome_until_a_persona_exists(
    page: Page, tmp_path: Path
) -> None:
    data = DataDir(tmp_path / "data")
    with served(data.path) as url:
        page.goto(url)
        expect(page.get_by_text("Welcome to PJai")).to_be_visible()
        screenshot(page, "welcome")
        page.get_by_test_id("welcome-name").fill("Mira")
        page.get_by_test_id("welcome-create").click()
        expect(page.get_by_test_id("persona-count")).to_have_text("1")
        expect(page.get_by_test_id("memory-count")).to_have_text("0")
        expect(page.get_by_text("Welcome to PJai")).to_have_count(0)
