"""The shell in a real browser: the page loads and follows commits made elsewhere."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from pjai.app import DataDir, Personas
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
