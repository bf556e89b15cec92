"""The shell in a real browser: the page loads and follows commits made elsewhere."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from pjai.app import DataDir, Personas
from pjai.demo import seed
from tests.web.browser.conftest import screenshot, served


def test_a_persona_made_in_another_process_appears_in_the_switch(
    page: Page, tmp_path: Path
) -> None:
    data = DataDir(tmp_path / "data")
    with data.open() as manager:
        Personas(manager).create("Ada")
    with served(data.path) as url:
        page.goto(url)
        switch = page.get_by_test_id("persona-switch")
        expect(switch).to_be_visible()
        with data.open() as manager:
            made = Personas(manager).create("Grace")
            Personas(manager).activate(made.id)
        expect(switch).to_contain_text("Grace")
        screenshot(page, "shell")


def test_on_a_phone_the_pages_fit_and_the_menu_opens_the_navigation(
    page: Page, tmp_path: Path
) -> None:
    data = DataDir(tmp_path / "data")
    with data.open() as manager:
        seed(manager)
    page.set_viewport_size({"width": 375, "height": 800})
    with served(data.path) as url:
        for path in ("/personas", "/memories", "/conversations"):
            page.goto(url.rstrip("/") + path)
            expect(page.get_by_test_id("persona-switch")).to_be_visible()
            page.wait_for_timeout(500)  # the view's first render
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 375, f"{path} is {width} px wide on a 375 px screen"
        search = page.get_by_test_id("search-text")
        page.goto(url.rstrip("/") + "/memories")
        box = search.bounding_box()
        assert box is not None
        assert box["width"] > 200  # room to type a query
        nav = page.locator(".q-drawer").get_by_text("Audit trail")
        expect(nav).not_to_be_visible()  # the navigation waits beside the page
        page.get_by_test_id("menu").click()
        expect(nav).to_be_visible()
        screenshot(page, "phone-menu")
