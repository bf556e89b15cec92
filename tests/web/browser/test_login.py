"""Off loopback the app asks for the passphrase before anything else."""

from __future__ import annotations

from pathlib import Path

import httpx
import nicegui
from playwright.sync_api import Browser, Page, expect

from pjai.app import DataDir, Personas
from pjai.app.websessions import WebSessions
from pjai.web import auth
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


def test_a_forwarded_for_header_does_not_make_another_client(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    data.passphrase().set(PASSPHRASE)
    with served(data.path, "--host", "0.0.0.0") as announced:
        url = announced.replace("0.0.0.0", "127.0.0.1")
        # A proxy in front that terminates TLS says so: the cookie is for TLS only.
        signed_in = httpx.post(
            url + "/login",
            data={"passphrase": PASSPHRASE},
            headers={"X-Forwarded-For": "(token x)", "X-Forwarded-Proto": "https"},
        )
        assert signed_in.status_code == 303
        assert "secure" in signed_in.headers["set-cookie"].lower()
        with WebSessions.open(data.path) as sessions:
            (session,) = sessions.list()
        assert session.label == "session from 127.0.0.1"  # who connected, not who it says
        answers = [
            httpx.post(
                url + "/login",
                data={"passphrase": f"wrong guess number {n}"},
                headers={"X-Forwarded-For": f"10.0.0.{n}"},
            ).status_code
            for n in range(auth.LoginThrottle.FAILURES + 1)
        ]
        assert answers == [401] * auth.LoginThrottle.FAILURES + [429]


def test_the_sign_out_address_asks_first_and_fits_a_phone(browser: Browser, tmp_path: Path) -> None:
    # Typed, or from an old bookmark: a page of the app, not a 405. Only its button,
    # a POST from the app's own page, signs out.
    data = DataDir(tmp_path / "data")
    data.passphrase().set(PASSPHRASE)
    with served(data.path, "--host", "0.0.0.0") as announced:
        url = announced.replace("0.0.0.0", "127.0.0.1")
        for width in (1280, 375):
            context = browser.new_context(viewport={"width": width, "height": 700})
            page = context.new_page()
            page.goto(url + "/login")
            assert _fits(page)
            page.get_by_label("Passphrase").fill(PASSPHRASE)
            page.get_by_role("button", name="Sign in").click()
            expect(page).to_have_url(url + "/")
            shown = page.goto(url + auth.LOGOUT_PATH)
            assert shown is not None
            assert shown.status == 200
            expect(page.get_by_text("Sign out?")).to_be_visible()
            assert _fits(page)
            screenshot(page, f"sign-out-{width}")
            page.goto(url + "/")  # the GET signed nobody out
            expect(page).to_have_url(url + "/")
            page.goto(url + auth.LOGOUT_PATH)
            page.get_by_role("button", name="Sign out").click()
            expect(page).to_have_url(url + "/login")
            page.goto(url + auth.LOGOUT_PATH)
            expect(page.get_by_text("You are not signed in.")).to_be_visible()
            assert _fits(page)
            screenshot(page, f"signed-out-{width}")
            page.get_by_role("link", name="Sign in").click()
            expect(page).to_have_url(url + "/login")
            context.close()


def _fits(page: Page) -> bool:
    """Whether the page is no wider than its window (nothing to scroll sideways)."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))
