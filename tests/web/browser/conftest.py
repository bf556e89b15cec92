"""Real-browser tests: `pjai serve` in a child process, Debian's Chromium driven by
Playwright. Without a Chromium at /usr/bin/chromium they skip, saying so; `.ci/run`
installs it, so CI always runs them. Screenshots go to ``artifacts/screenshots``."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
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

from pjai.bench.webapp import WebProcess  # noqa: E402
from tests.databases import postgres_schema  # noqa: E402

Primary = Callable[[], dict[str, str]]
"""Makes the environment of a new data directory's SQL primary."""


@contextmanager
def served(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run `pjai serve` on ``data_dir`` (``args`` added) until the block ends; yields
    the URL it announced."""
    with WebProcess(data_dir, *args, env=env) as web:
        yield web.url


@pytest.fixture(params=["sqlite", "postgresql"])
def primary(request: pytest.FixtureRequest) -> Iterator[Primary]:
    """The SQL primary of the test's data directories: the embedded SQLite default, or
    PostgreSQL, each directory in a fresh schema (skipped, saying so, without
    ``PJAI_TEST_POSTGRES_URL``). Pass what it makes as ``environ``/``env``."""
    with ExitStack() as stack:

        def make() -> dict[str, str]:
            if request.param == "sqlite":
                return {}
            return {"PJAI_SQL_SHARDS": stack.enter_context(postgres_schema())}

        yield make


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
