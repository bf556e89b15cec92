"""Names and text from others as they come: very long, with line breaks, direction
overrides or nothing visible. Each page fits a phone (375 px) and a wide screen, shows
the odd text as marks, and its warnings are readable."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

from pjai.app import Bookmarks, DataDir, Memories, Personas
from tests.web.browser.conftest import screenshot, served

LONG = "W" * 200
"""A persona's name with no place to break."""

PAGES = ("/", "/personas", "/memories", "/audit", "/devtools")


def _odd_names(data: DataDir) -> None:
    with data.open() as manager:
        personas = Personas(manager)
        admin = personas.create("Admin \u202eevil\u202c ok", description="D" * 5000)
        personas.create(LONG, description="desc \u202egnp.exe")
        personas.create("Line1\nLine2\nLine3")
        personas.create("\u200b")
        personas.activate(admin.id)
        personas.update(admin.id, sets=["privacy.export_allowed=false"])  # a configuration change
        Memories(manager).add(admin.id, "memory \u202eevil", tier="hot")
        Bookmarks(manager).create(admin.id, "B" * 200, description="tip")
        Bookmarks(manager).create(admin.id, "Book \u202ekram")


def _width(page: Page) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth"))


def _right(locator: Locator) -> float:
    box = locator.bounding_box()
    assert box is not None
    return box["x"] + box["width"]


def contrast(locator: Locator) -> float:
    """The contrast ratio (WCAG) of the element's text colour on its background."""
    return float(
        locator.evaluate(
            """element => {
                const rgb = text => text.match(/[\\d.]+/g).map(Number);
                const luminance = ([r, g, b]) => {
                    const [R, G, B] = [r, g, b].map(c => {
                        c /= 255;
                        return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
                    });
                    return 0.2126 * R + 0.7152 * G + 0.0722 * B;
                };
                let back = element;
                while (back && rgb(getComputedStyle(back).backgroundColor)[3] === 0) {
                    back = back.parentElement;
                }
                const behind = back ? rgb(getComputedStyle(back).backgroundColor) : [255, 255, 255];
                const [a, b] = [
                    luminance(rgb(getComputedStyle(element).color)), luminance(behind),
                ];
                return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
            }"""
        )
    )


def test_on_a_phone_pages_with_long_and_odd_names_fit(page: Page, tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    _odd_names(data)
    page.set_viewport_size({"width": 375, "height": 800})
    with served(data.path) as url:
        for path in PAGES:
            page.goto(url + path)
            expect(page.get_by_test_id("persona-switch")).to_be_visible()
            page.wait_for_timeout(800)  # the view's first render
            assert _width(page) <= 375, f"{path} is {_width(page)} px wide on a 375 px screen"
            screenshot(page, f"long-names-{path.strip('/') or 'dashboard'}-375")

        page.goto(url + "/memories")
        long_chip = page.get_by_test_id("bookmark").filter(has_text="BBBB")
        expect(long_chip).to_be_visible()
        assert _right(long_chip.locator(".q-chip__icon--remove")) <= 375  # it can be removed
        expect(page.get_by_test_id("bookmark").filter(has_text="Book ⟦RLO⟧kram")).to_be_visible()

        page.goto(url + "/personas")
        admin = page.locator('[data-testid="persona-row"]:visible', has_text="Admin")
        expect(admin).to_contain_text("Admin ⟦RLO⟧evil")
        admin.click()
        form = page.get_by_test_id("persona-form")
        expect(form.locator('[data-setting="name"]')).to_have_value("Admin \u202eevil\u202c ok")
        cut = form.locator(".q-field__label").evaluate_all(
            "labels => labels.filter(l => l.scrollWidth > l.clientWidth + 1)"
            ".map(l => l.textContent)"
        )
        assert cut == [], f"labels cut on a phone: {cut}"
        screenshot(page, "long-names-form-375")

        long_row = page.locator('[data-testid="persona-row"]:visible', has_text="WWWW")
        long_row.get_by_role("button", name="Delete").click()
        dialog = page.get_by_test_id("confirm-dialog")
        expect(dialog).to_be_visible()
        assert _right(dialog) <= 375
        assert _width(page) <= 375
        screenshot(page, "long-names-delete-375")
        page.get_by_role("button", name="Cancel").click()
        expect(dialog).to_have_count(0)

        long_row.get_by_test_id("persona-more").click()
        page.locator('[data-testid="persona-erase"]:visible').click()
        erase = page.get_by_test_id("erase-dialog")
        expect(erase).to_be_visible()
        assert _right(erase) <= 375
        screenshot(page, "long-names-erase-375")


def test_on_a_wide_screen_a_long_description_and_name_keep_their_place(
    page: Page, tmp_path: Path
) -> None:
    data = DataDir(tmp_path / "data")
    _odd_names(data)
    page.set_viewport_size({"width": 1400, "height": 900})
    with served(data.path) as url:
        for path in PAGES:
            page.goto(url + path)
            expect(page.get_by_test_id("persona-switch")).to_be_visible()
            page.wait_for_timeout(800)
            assert _width(page) <= 1400, f"{path} is {_width(page)} px wide"
            screenshot(page, f"long-names-{path.strip('/') or 'dashboard'}-1400")
        page.goto(url + "/audit")
        cell = page.locator("td", has_text="WWWW").first
        expect(cell).to_have_attribute("title", LONG)
        width = cell.evaluate("cell => cell.getBoundingClientRect().width")
        assert width <= 260  # cut to the column; the tooltip has it all


def test_devtools_take_a_position_past_the_head_say_why_a_flag_is_refused_and_keep_the_switch(
    page: Page, tmp_path: Path
) -> None:
    data = DataDir(tmp_path / "data")
    _odd_names(data)
    with data.open() as manager:
        head = manager.head()
    page.set_viewport_size({"width": 1400, "height": 900})
    with served(data.path) as url:
        page.goto(url + "/devtools")
        expect(page.get_by_test_id("timetravel-event")).to_contain_text(f"event {head}:")
        position = page.get_by_test_id("timetravel-position")
        position.fill("999")
        position.press("Tab")
        expect(position).to_have_value(str(head))
        position.fill("1")
        position.press("Tab")
        expect(page.get_by_test_id("timetravel-event")).to_contain_text("event 1:")
        expect(page.locator(".q-notification")).to_have_count(0)

        page.get_by_role("tab", name="Sync and flags").click()
        page.get_by_test_id("flag-sync").click()
        notice = page.locator(".q-notification")
        expect(notice).to_contain_text("a store's mode is fixed when it is made")
        expect(notice).not_to_contain_text("has been deleted")
        expect(page.get_by_test_id("flag-sync")).to_have_attribute("aria-checked", "false")

        page.get_by_test_id("flag-use_livestore").click()
        off = page.get_by_test_id("store-off")
        expect(off).to_be_visible()
        assert contrast(off) >= 4.5
        screenshot(page, "devtools-store-off-1400")
        page.set_viewport_size({"width": 375, "height": 800})
        page.reload()
        expect(off).to_be_visible()
        expect(page.get_by_test_id("flag-use_livestore")).to_be_visible()
        assert _width(page) <= 375
        screenshot(page, "devtools-store-off-375")
        page.get_by_test_id("flag-use_livestore").click()
        expect(page.get_by_role("tab", name="Time travel")).to_be_visible(timeout=15_000)


def test_the_same_archive_can_be_chosen_again_after_a_refusal(page: Page, tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    _odd_names(data)
    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"not a zip")
    with served(data.path) as url:
        page.goto(url + "/devtools")
        page.get_by_role("tab", name="Export and import").click()
        target = page.get_by_test_id("import-target")
        target.fill(str(tmp_path / "restored"))
        chooser = page.locator('[data-testid="import-upload"] input[type=file]')
        chooser.set_input_files(str(garbage))
        outcome = page.get_by_test_id("import-outcome")
        expect(outcome).to_contain_text("Not imported: garbage.zip is not a PJai archive")
        expect(outcome).not_to_contain_text(tempfile.gettempdir())
        screenshot(page, "devtools-import-refused")
        target.fill("")
        chooser.set_input_files(str(garbage))
        expect(outcome).to_have_text("Name the new data directory first.")


def _status(data: DataDir, state: str, peers: list[dict[str, object]]) -> None:
    """The status file a running `pjai sync connect` writes (this process stands for it)."""
    body = {
        "state": state,
        "pid": os.getpid(),
        "url": "ws://server/sync",
        "store_id": "team",
        "server_head": 0,
        "peers": peers,
        "last_error": "connection refused",
    }
    data.sync_status_path.write_text(json.dumps(body))


def test_a_long_peer_name_fits_a_phone_and_the_offline_note_is_readable(
    page: Page, tmp_path: Path
) -> None:
    env = {"PJAI_FLAG_SYNC": "true"}
    data = DataDir(tmp_path / "data", environ=env)
    with data.open() as manager:
        Personas(manager).create("Ada", activate=True)
    now = datetime.now(UTC).isoformat()
    peer = {"name": "P" * 80, "state": "online", "client_id": "c2", "last_seen": now, "detail": {}}
    _status(data, "online", [peer])
    page.set_viewport_size({"width": 375, "height": 800})
    with served(data.path, env=env) as url:
        page.goto(url + "/collaboration")
        expect(page.get_by_test_id("peer")).to_contain_text("PPPP")
        assert _width(page) <= 375
        screenshot(page, "collaboration-long-peer-375")
        _status(data, "offline", [])
        offline = page.get_by_test_id("offline")
        expect(offline).to_be_visible()
        assert contrast(offline) >= 4.5
        page.set_viewport_size({"width": 1400, "height": 900})
        screenshot(page, "collaboration-offline-1400")
