"""The audit trail in a real browser, on the demo data, over SQLite and PostgreSQL
primaries: filter by event type, search the payloads, open an event's payload, see
another process's commit arrive, and a conflict with the event that won."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from pjai.app import DataDir, Memories, set_flag
from pjai.demo import seed
from pjai.schema import PersonaCreated
from pjai.schema.tables import personas
from tests.helpers import history
from tests.web.browser.conftest import Primary, screenshot, served


def test_filter_search_and_open_an_events_payload(
    page: Page, tmp_path: Path, primary: Primary
) -> None:
    env = primary()
    data = DataDir(tmp_path / "data", environ=env)
    with data.open() as manager:
        seed(manager)
        assert manager.store is not None
        logged = sum(1 for _ in manager.store.events())
    set_flag(data, "use_livestore", False, source="test")
    set_flag(data, "use_livestore", True, source="test")
    with served(data.path, env=env) as url:
        page.goto(f"{url}/audit")
        table = page.get_by_test_id("audit-table")
        total = page.get_by_test_id("audit-total")
        expect(total).to_have_text(str(logged + 2))
        expect(page.get_by_test_id("audit-config")).to_contain_text("flags.use_livestore")

        page.get_by_test_id("audit-type").click()
        page.get_by_role("option", name="v1.MemoryAdded").click()
        page.keyboard.press("Escape")
        expect(table.get_by_text("v1.PersonaCreated")).to_have_count(0)
        expect(table.get_by_text("v1.MemoryAdded").first).to_be_visible()

        search = page.get_by_test_id("audit-search")
        search.fill("property graph")
        search.press("Enter")
        expect(total).to_have_text("1")
        table.get_by_text("v1.MemoryAdded").click()
        payload = page.get_by_test_id("audit-payload")
        expect(payload).to_contain_text('"content": "Current project: a property graph engine."')
        expect(page.locator(".q-dialog [class*='q-transition--']")).to_have_count(0)
        screenshot(page, "audit-detail")
        page.keyboard.press("Escape")
        # The dialog holds the focus until it has closed: typing before would go nowhere.
        expect(payload).to_be_hidden()

        search.fill("")
        search.press("Enter")
        expect(total).not_to_have_text("1")
        with data.open() as manager:
            persona_id = manager.query(personas.select())[0].id
            Memories(manager).add(persona_id, "Written by another process")
        expect(table.get_by_text("Written by another process")).to_be_visible()
        screenshot(page, "audit")


def test_a_conflict_shows_the_event_that_won(page: Page, tmp_path: Path, primary: Primary) -> None:
    env = primary()
    data = DataDir(tmp_path / "data", environ=env)
    data.flags().set("sync", True)
    with data.open() as manager:
        seed(manager)  # pending: no sync server has confirmed it
        assert manager.store is not None
        ada = manager.query(personas.select().where(personas.c.name == "Ada"))[0].id
        # Elsewhere a persona with Ada's id came first: the local one is rejected.
        upstream = history([PersonaCreated(persona_id=ada, name="Ada")], client_id="laptop")
        (lost,) = manager.store.rebase(upstream).rejected
    with served(data.path, env=env) as url:
        page.goto(f"{url}/audit")
        conflicts = page.get_by_test_id("audit-conflicts")
        expect(conflicts.get_by_test_id("audit-winner")).to_have_text(
            f"v1.PersonaCreated at {upstream[0].position}"
        )
        page.get_by_test_id("audit-outcome").click()
        page.get_by_role("option", name="rejected").click()
        page.keyboard.press("Escape")
        expect(page.get_by_role("option", name="rejected")).to_have_count(0)
        expect(page.get_by_test_id("audit-total")).to_have_text("1")
        screenshot(page, "audit-conflicts")
        page.get_by_test_id("audit-table").get_by_text(lost[0].name).click()
        expect(page.get_by_test_id("audit-reason")).to_contain_text(upstream[0].id)
        page.get_by_test_id("audit-open-winner").click()
        expect(page.get_by_test_id("audit-payload")).to_contain_text('"name": "Ada"')
        expect(page.get_by_test_id("audit-detail")).to_contain_text("laptop")
