"""The views in a real browser on a PostgreSQL primary, with the store switched off, so
that every panel reads from PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from pjai.app import DataDir, Personas, set_flag
from pjai.demo import seed
from tests.databases import postgres_schema
from tests.web.browser.conftest import screenshot, served


def test_every_view_reads_a_postgresql_primary(page: Page, tmp_path: Path) -> None:
    with postgres_schema() as url:
        environ = {"PJAI_SQL_SHARDS": url}
        data = DataDir(tmp_path / "data", environ=environ)
        with data.open() as manager:
            personas = seed(manager)
            Personas(manager).activate(personas["Ada"])
        set_flag(data, "use_livestore", False)
        with served(data.path, env=environ) as address:
            page.goto(address + "/")
            expect(page.locator('[data-banner="store-off"]')).to_be_visible()
            expect(page.get_by_test_id("persona-count")).to_have_text(str(len(personas)))
            page.goto(address + "/personas")
            expect(page.get_by_test_id("persona-row")).to_have_count(len(personas))
            page.goto(address + "/memories")
            expect(page.locator('[data-testid="explorer-table"] tbody tr').first).to_be_visible()
            page.goto(address + "/conversations")
            expect(page.get_by_text("no conversation yet", exact=False)).to_be_visible()
            screenshot(page, "postgres-store-off")
