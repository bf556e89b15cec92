"""The personas view in a real browser: create, activate, delete with confirmation."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from pjai.app import DataDir, Memories, Personas
from tests.web.browser.conftest import screenshot, served


def test_create_activate_and_delete_a_persona(page: Page, tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    with data.open() as manager:
        ada = Personas(manager).create("Ada", template_name="researcher", activate=True)
        Memories(manager).add(ada.id, "Cites sources", tier="hot")
    with served(data.path) as url:
        page.goto(f"{url}/personas")
        rows = page.locator('[data-testid="persona-row"]:visible')
        expect(rows).to_have_count(1)
        expect(page.get_by_test_id("persona-form")).to_be_visible()
        expect(rows.first.locator('[data-tier="hot"]')).to_have_text("hot 1")

        page.get_by_test_id("new-persona").click()
        dialog = page.get_by_test_id("create-dialog")
        dialog.get_by_label("Name", exact=True).fill("Coach Carter")
        dialog.get_by_role("combobox", name="Template").click()
        page.get_by_role("option", name="Coach").click()
        expect(dialog).to_contain_text("keeps track of goals")
        dialog.get_by_test_id("create-confirm").click()
        expect(dialog).to_be_hidden()
        expect(rows).to_have_count(2)
        carter = rows.filter(has_text="Coach Carter")
        # the new persona is selected: its form shows the template's settings
        form = page.get_by_test_id("persona-form")
        expect(form.locator('[data-setting="name"]')).to_have_value("Coach Carter")
        threshold = form.locator('[data-setting="memory.importance_threshold"]')
        expect(threshold).to_have_value("0.4")

        carter.get_by_role("button", name="Activate").click()
        expect(carter.get_by_test_id("active-badge")).to_be_visible()
        expect(page.get_by_test_id("persona-switch")).to_contain_text("Coach Carter")
        # the notifications fade; the screenshot shows the view itself
        expect(page.locator(".q-notification")).to_have_count(0, timeout=15_000)
        screenshot(page, "personas")

        carter.get_by_role("button", name="Delete").click()
        confirm = page.get_by_test_id("confirm-dialog")
        expect(confirm).to_contain_text("Delete Coach Carter?")
        confirm.get_by_test_id("confirm-action").click()
        expect(rows).to_have_count(1)
        page.get_by_text("Show deleted", exact=True).click()
        deleted = rows.filter(has_text="Coach Carter")
        expect(deleted.get_by_role("button", name="Restore")).to_be_visible()
        screenshot(page, "personas-deleted")
    with data.open() as manager:
        (carter,) = Personas(manager).list(include_deleted=True, name_contains="Carter")
    assert carter.deleted_at is not None


def test_an_erasure_shows_its_proof_and_selects_another_persona(page: Page, tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    with data.open() as manager:
        Personas(manager).create("Ada", activate=True)
        Personas(manager).create("Basil", description="stays here")
    with served(data.path) as url:
        page.goto(f"{url}/personas")
        basil = page.locator('[data-testid="persona-row"]:visible', has_text="Basil")
        basil.click()
        basil.get_by_test_id("persona-more").click()
        page.locator('[data-testid="persona-erase"]:visible').click()
        dialog = page.get_by_test_id("erase-dialog")
        dialog.get_by_label("Type Basil to confirm").fill("Basil")
        dialog.get_by_test_id("erase-confirm").click()
        expect(page.locator(".q-notification")).to_contain_text("Erased Basil")
        expect(page.locator(".q-notification")).not_to_contain_text("has been deleted")
        form = page.get_by_test_id("persona-form")
        expect(form.locator('[data-setting="name"]')).to_have_value("Ada")
    with data.open() as manager:
        assert [p.name for p in Personas(manager).list()] == ["Ada"]
