"""The memory explorer in a real browser, on the demo data: filter, open a memory, see
the graph around it."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from pjai.app import DataDir, Memories
from pjai.demo import seed
from pjai.schema.tables import memories
from tests.web.browser.conftest import screenshot, served


def test_filter_open_a_memory_and_see_its_graph(page: Page, tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    with data.open() as manager:
        seed(manager)
        ids = {r.name: r.id for r in manager.query(memories.select())}
        service = Memories(manager)
        service.link(ids["Works on graph databases"], ids["Prefers concise answers"], "related")
        service.link(ids["Works on graph databases"], ids["Morning person"], "temporal")
    with served(data.path) as url:
        page.goto(f"{url}/memories")
        table = page.get_by_test_id("explorer-table")
        expect(table.get_by_text("Works on graph databases")).to_be_visible()
        expect(page.get_by_test_id("memory-total")).to_have_text("3")

        page.get_by_test_id("filter-tiers").click()
        page.get_by_role("option", name="warm").click()
        page.keyboard.press("Escape")
        expect(page.get_by_test_id("memory-total")).to_have_text("1")
        expect(table.get_by_text("Morning person")).to_be_visible()
        expect(table.get_by_text("Works on graph databases")).to_have_count(0)

        page.get_by_test_id("filter-clear").click()
        expect(page.get_by_test_id("memory-total")).to_have_text("3")
        table.get_by_text("Works on graph databases").click()
        expect(page.get_by_test_id("detail-content")).to_have_text(
            "Current project: a property graph engine."
        )
        graph = page.get_by_test_id("memory-graph")
        expect(graph.locator("canvas")).to_be_visible()
        expect(page.get_by_text("related · strength")).to_be_visible()
        with data.open() as manager:
            assert Memories(manager).get(ids["Works on graph databases"]).access_count == 1
        # The dialog has finished opening: no transition is running in it.
        expect(page.locator(".q-dialog [class*='q-transition--']")).to_have_count(0)
        screenshot(page, "explorer")
