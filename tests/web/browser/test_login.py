"""Off loopback the app asks for the passphrase before anything else."""

from __future__ import annotations

from pathlib import Path

import httpx
import nicegui
from playwright.sync_api import Browser, Page, expect

from pjai.app import DataDir, Personas
from pjai.app.websessions import WebSessions
from tests.web.browser.conftest import screenshot, served

PASSPHRASE = "a passphrase for the test"


def test_off_loopback_a_login_is_required(page: Page, browser: Browser, tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    with data.open() as manager:
        Personas(manager).create("Ada", activate=True)
    data.passphrase().set(PASSPHRASE)
    with served(data.path, "--host", "0.0.0.0") as announced:
        url = announced.replace("0.0.0.0", "127.0.0.1")
        page.goto(url + "/personas")
        expect(page).to_have_url(url + "/login?next=/personas")
        page.get_by_label("Passphrase").fill("not the passphrase")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("not the one set")
        screenshot(page, "login")
        page.get_by_label("Passphrase").fill(PASSPHRASE)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(url + "/personas")
        expect(page.get_by_test_id("persona-switch")).to_be_visible()

        page.get_by_test_id("sign-out").click()
        expect(page).to_have_url(url + "/login")
        page.goto(url + "/")
        expect(page).to_have_url(url + "/login?next=/")

        other = browser.new_context()  # no session cookie
        elsewhere = other.new_page()
        elsewhere.goto(url + "/")
        expect(elsewhere).to_have_url(url + "/login?next=/")
        other.close()
        # Nothing but the form and static files without a session, whatever is asked.
        refused = httpx.get(url + "/_nicegui_ws/socket.io/?EIO=4&transport=polling")
        assert refused.status_code == 303
        assert refused.headers["location"].startswith("/login")


def test_an_access_token_logs_in_and_revoking_its_session_signs_out(
    page: Page, tmp_path: Path
) -> None:
    data = DataDir(tmp_path / "data")
    with data.open() as manager:
        Personas(manager).create("Ada", activate=True)
    data.passphrase().set(PASSPHRASE)
    with WebSessions.open(data.path) as sessions:
        secret, _ = sessions.create_access("phone")
    with served(data.path, "--host", "0.0.0.0") as announced:
        url = announced.replace("0.0.0.0", "127.0.0.1")
        page.goto(url + "/personas")
        page.get_by_label("Passphrase or access token").fill(secret + "x")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("not live")
        page.get_by_label("Passphrase or access token").fill(secret)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(url + "/personas")
        expect(page.get_by_test_id("persona-switch")).to_be_visible()
        # Revoked from the command line, as a person would from another terminal.
        with WebSessions.open(data.path) as sessions:
            (session,) = [t for t in sessions.list() if t.label.startswith("session")]
            assert session.label.startswith("session from 127.0.0.1 (token ")
            sessions.revoke(session.id, actor="test")
        page.goto(url + "/")
        expect(page).to_have_url(url + "/login?next=/")


def test_off_loopback_no_path_shows_the_app_without_a_session(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    with data.open() as manager:
        Personas(manager).create("Ada Lovelace", activate=True)
    data.passphrase().set(PASSPHRASE)
    version = nicegui.__version__
    with served(data.path, "--host", "0.0.0.0") as announced:
        url = announced.replace("0.0.0.0", "127.0.0.1")
        # Under the prefixes of NiceGUI's scripts but served by no route: NiceGUI answers
        # them with the app's page, which names the personas.
        for path in ("resources/", "resources//personas", "esm/", "esm//personas"):
            answer = httpx.get(f"{url}/_nicegui/{version}/{path}")
            assert answer.status_code == 303, path
            assert answer.headers["location"].startswith("/login?next="), path
            assert "Ada Lovelace" not in answer.text, path
