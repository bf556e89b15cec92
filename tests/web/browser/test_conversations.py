"""The conversations view in a real browser: start, talk, see another process's message,
make memories."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Page, expect

from pjai.app import Conversations, DataDir, Memories, Personas
from pjai.sql.repositories import MemoryFilter
from tests.web.browser.conftest import screenshot, served


def _listening(url: str, timeout: float = 30.0) -> None:
    """Wait until ``url``'s port takes connections: `pjai serve` announces its URL from
    a startup hook, which can run before the port is bound."""
    address = urlsplit(url)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((address.hostname, address.port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_a_conversation_is_started_talked_in_and_made_into_memories(
    page: Page, tmp_path: Path
) -> None:
    data = DataDir(tmp_path / "data")
    with data.open() as manager:
        ada = Personas(manager).create("Ada", activate=True).id
        earlier = Conversations(manager).start(ada, title="An earlier talk")
        Conversations(manager).say(earlier, "user", "Hello?")
    with served(data.path) as url:
        _listening(url)
        page.goto(f"{url}/conversations")
        expect(page.get_by_test_id("conversation-row")).to_have_count(1)

        page.get_by_test_id("conversation-title-input").fill("Weekend plans")
        page.get_by_test_id("start-conversation").click()
        expect(page.get_by_test_id("conversation-row")).to_have_count(2)
        expect(page.get_by_test_id("conversation-title")).to_have_text("Weekend plans")
        expect(page.get_by_test_id("no-message")).to_be_visible()

        text = page.get_by_test_id("message-text")
        text.fill("Shall we go hiking on Saturday?")
        page.get_by_test_id("send").click()
        expect(page.get_by_test_id("message")).to_have_count(1)
        page.get_by_test_id("say-as").get_by_text("Ada").click()
        text.fill("Yes, the weather looks good.\nI will pack the maps.")
        text.press("Control+Enter")
        expect(page.get_by_test_id("message")).to_have_count(2)

        with data.open() as manager:
            (talk,) = [c.id for c in Conversations(manager).list(ada) if c.title == "Weekend plans"]
            Conversations(manager).say(talk, "user", "Great, see you at eight.")
        messages = page.get_by_test_id("message")
        expect(messages).to_have_count(3)
        expect(messages.nth(2)).to_contain_text("Great, see you at eight.")
        expect(messages.nth(1)).to_contain_text("I will pack the maps.")

        page.get_by_test_id("make-memories").click()
        expect(page.get_by_test_id("ingested")).to_contain_text("Made 3 memories")
        expect(page.get_by_role("link", name="See them in Memories")).to_be_visible()
        with data.open() as manager:
            assert len(Memories(manager).list(MemoryFilter(persona_id=ada))) == 3
        screenshot(page, "conversations")
