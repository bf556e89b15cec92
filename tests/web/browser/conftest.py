"""Real-browser tests: `pjai serve` in a child process, Debian's Chromium driven by
Playwright. Without a Chromium at /usr/bin/chromium they skip, saying so; `.ci/run`
installs it, so CI always runs them. Screenshots go to ``artifacts/screenshots``."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(os.environ.get("PJAI_ARTIFACTS", Path(__file__).parents[3] / "artifacts"))
SCREENSHOTS = ARTIFACTS / "screenshots"

if not CHROMIUM.exists():
    pytest.skip(
        f"no Chromium at {CHROMIUM} (apt-get install -y chromium); browser tests skipped",
        allow_module_level=True,
    )

from playwright.sync_api import Browser, Page, sync_playwright  # noqa: E402


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def served(
    data_dir: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 30.0
) -> Iterator[str]:
    """Run `pjai serve` on ``data_dir`` (``args`` added) until the block ends; yields
    the URL it announced."""
    port = free_port()
    log = data_dir.parent / f"serve-{port}.log"
    command = [sys.executable, "-m", "pjai", "serve", "--data-dir", str(data_dir)]
    command += ["--port", str(port), *args]
    with log.open("w") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_child_env(env),
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(r"PJai web app on (http://\S+)", log.read_text())
            if found:
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"`pjai serve` did not start:\n{log.read_text()}")
            time.sleep(0.05)
        yield found[1].rstrip("/")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _child_env(extra: dict[str, str] | None) -> dict[str, str]:
    # NiceGUI takes a process that sees PYTEST_CURRENT_TEST for its own test server.
    inherited = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    return {**inherited, **(extra or {})}


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Headless Chromium for the browser tests. Playwright's sync API holds an event
    loop while it runs, so it stops before the asyncio tests of other packages."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A new page in a context of its own (no shared cookies)."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    yield context.new_page()
    context.close()


def screenshot(page: Page, name: str) -> Path:
    """Save what ``page`` shows as ``artifacts/screenshots/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
