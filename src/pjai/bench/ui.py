"""``pjai bench ui``: the web app in headless Chromium, against `pjai serve` on loopback.

- ``commit_to_dom_*``: a memory committed by this process (another process than the
  app's) until the dashboard's memory count shows it, timed by a MutationObserver in
  the page against this process's clock (both read the same wall clock).
- ``sync_to_dom_p95_ms``: the same, committed on a second data directory that syncs
  with the app's through a sync server (both with `pjai sync connect` running).
- ``explorer_first_paint_ms``: opening the memory explorer on a persona with
  ``explorer_memories`` memories until its first rows are visible.
- ``persona_switch_ms``: choosing another persona in the header until every panel of
  the page shows it (their ``data-persona`` attribute), timed in the page.
- ``server_rss_per_tab_mb``: the app's resident memory with ``tabs`` dashboards open,
  less the memory with one, per extra tab.
- ``audit_filter_p95_ms``: a filtered page of the audit trail and its count, through the
  read model its view runs (in this process), on the explorer's log (about
  ``explorer_memories`` events): no filter, persona, type, time, outcome, text.
- ``time_travel_100k_s``: the state as of the last event of that log, rebuilt in a
  scratch store as the devtools rebuild it (``time_travel_events`` says how long the
  log is).
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pjai.app import DataDir, Personas
from pjai.bench.stats import percentile
from pjai.bench.webapp import SyncProcess, WebProcess
from pjai.bench.workload import memory_event
from pjai.errors import ConfigError
from pjai.hybrid import HybridDatabaseManager
from pjai.schema import MemoryAdded
from pjai.sql.engine import sqlite_url
from pjai.store import Progress

__all__ = ["CHROMIUM", "UiWorkload", "run_ui_bench"]

CHROMIUM = Path("/usr/bin/chromium")
_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@dataclass(frozen=True, slots=True)
class UiWorkload:
    """How much the UI benchmark does."""

    changes: int = 200
    sync_changes: int = 100
    explorer_memories: int = 100_000
    switches: int = 20
    tabs: int = 20

    @classmethod
    def quick(cls) -> UiWorkload:
        """A seconds-long smoke run."""
        return cls(changes=20, sync_changes=10, explorer_memories=2_000, switches=4, tabs=4)


# Records, by text, when an element matching the selector first showed it.
_OBSERVE = """([selector]) => {
  window.__seen = {};
  const note = () => {
    for (const el of document.querySelectorAll(selector)) {
      const text = el.textContent.trim();
      if (!(text in window.__seen))
        window.__seen[text] = performance.timeOrigin + performance.now();
    }
  };
  new MutationObserver(note).observe(document.body,
    {subtree: true, childList: true, characterData: true, attributes: true});
  note();
}"""

# Chooses the persona named ``name`` in the header's select and resolves with the
# milliseconds until every [data-persona] element names ``id``.
_SWITCH = """async ([name, id]) => {
  const done = () => [...document.querySelectorAll('[data-persona]')]
      .every(el => el.getAttribute('data-persona') === id);
  const option = [...document.querySelectorAll('.q-menu .q-item')]
      .find(el => el.textContent.trim() === name);
  if (!option) throw new Error('no option ' + name);
  const start = performance.now();
  return await new Promise(resolve => {
    const check = () => {
      if (done()) { observer.disconnect(); resolve(performance.now() - start); }
    };
    const observer = new MutationObserver(check);
    observer.observe(document.body, {subtree: true, childList: true, attributes: true});
    option.click();
  });
}"""


def _summary(samples: list[float], key: str) -> dict[str, float]:
    return {
        f"{key}_p50_ms": round(statistics.median(samples), 2),
        f"{key}_p95_ms": round(percentile(samples, 95), 2),
    }


def run_ui_bench(
    workdir: Path,
    *,
    quick: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Measure the web app as described in the module docstring."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise ConfigError(
            "`pjai bench ui` drives Chromium through Playwright: pip install playwright"
        ) from exc
    if not CHROMIUM.exists():
        raise ConfigError(
            f"`pjai bench ui` needs Chromium at {CHROMIUM} (apt-get install chromium)"
        )
    workload = UiWorkload.quick() if quick else UiWorkload()
    step = _stepper(progress, 4)
    result: dict[str, Any] = {"workload": vars_of(workload)}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=_FLAGS)
        try:
            result |= _commit_to_dom(browser, workdir / "local", workload.changes)
            step()
            result |= _sync_to_dom(browser, workdir / "synced", workload.sync_changes)
            step()
            result |= _explorer_and_switch(browser, workdir / "big", workload)
            step()
            result |= _rss_per_tab(browser, workdir / "tabs", workload.tabs)
            step()
        finally:
            browser.close()
    return result


def vars_of(workload: UiWorkload) -> dict[str, int]:
    """The workload as JSON."""
    return {name: getattr(workload, name) for name in workload.__dataclass_fields__}


def _stepper(progress: Progress | None, total: int) -> Callable[[], None]:
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    return step


def _persona(manager: HybridDatabaseManager, name: str) -> str:
    made = Personas(manager).create(name, activate=True)
    return made.id


def _open_dashboard(browser: Any, url: str) -> Any:
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    page.goto(url + "/")
    page.get_by_test_id("memory-count").first.wait_for(timeout=30_000)
    page.evaluate(_OBSERVE, ['[data-testid="memory-count"]'])
    return page


def _seen_ms(page: Any, text: str, timeout_s: float = 10.0) -> float:
    """The page's timestamp (ms since the epoch) of ``text`` appearing, once it has."""
    handle = page.wait_for_function(
        "(t) => window.__seen[t]", arg=text, timeout=timeout_s * 1000, polling="raf"
    )
    return float(handle.json_value())


def _commit_to_dom(browser: Any, data: Path, changes: int) -> dict[str, float]:
    data_dir = DataDir(data)
    with data_dir.open() as manager:
        persona_id = _persona(manager, "Bench")
    with WebProcess(data) as web, data_dir.open() as manager:
        page = _open_dashboard(browser, web.url)
        samples = []
        for i in range(changes):
            started = time.time() * 1000
            manager.commit(memory_event(i, persona_id))
            samples.append(_seen_ms(page, str(i + 1)) - started)
        page.close()
    return _summary(samples, "commit_to_dom")


@contextlib.contextmanager
def _sync_server(workdir: Path) -> Iterator[tuple[str, str]]:
    from pjai.bench.syncserver import servers
    from pjai.sync.server import ServerDatabase

    db_url = sqlite_url(workdir / "sync-server.db")
    with ServerDatabase.open(db_url) as database:
        token = database.tokens.create("bench-ui", "write", "bench ui")[0]
    with servers(db_url, workdir, 1) as (server,):
        yield server.url, token


def _sync_to_dom(browser: Any, workdir: Path, changes: int) -> dict[str, float]:
    workdir.mkdir(parents=True)
    here, there = DataDir(workdir / "here"), DataDir(workdir / "there")
    with _sync_server(workdir) as (url, token), contextlib.ExitStack() as running:
        for data in (here, there):
            running.enter_context(SyncProcess(data.path, url, token, store_id="bench-ui"))
        with there.open() as manager:
            persona_id = _persona(manager, "Synced")
        web = running.enter_context(WebProcess(here.path))
        page = _open_dashboard(browser, web.url)
        samples = []
        with there.open() as manager:
            for i in range(changes):
                started = time.time() * 1000
                manager.commit(memory_event(i, persona_id))
                samples.append(_seen_ms(page, str(i + 1), timeout_s=30) - started)
        page.close()
    return {"sync_to_dom_p95_ms": round(percentile(samples, 95), 2)}


def _explorer_and_switch(browser: Any, data: Path, workload: UiWorkload) -> dict[str, Any]:
    data_dir = DataDir(data)
    with data_dir.open() as manager:
        small = _persona(manager, "Small")
        big = _persona(manager, "Big")
        batch: list[MemoryAdded] = []
        for i in range(workload.explorer_memories):
            batch.append(memory_event(i, big))
            if len(batch) == 5_000:
                manager.commit(*batch)
                batch.clear()
        manager.commit(*batch)
    firsts, switches = [], []
    with WebProcess(data) as web:
        for _ in range(3):
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            started = time.perf_counter()
            page.goto(web.url + "/memories")
            page.locator('[data-testid="explorer-table"] tbody tr').first.wait_for(timeout=60_000)
            firsts.append((time.perf_counter() - started) * 1000)
            page.close()
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(web.url + "/")
        page.locator(f'[data-persona="{big}"]').first.wait_for(timeout=60_000)
        names = {big: "Big", small: "Small"}
        current = big
        for _ in range(workload.switches):
            target = small if current == big else big
            page.get_by_test_id("persona-switch").click()
            page.locator(".q-menu .q-item").first.wait_for()
            switches.append(float(page.evaluate(_SWITCH, [names[target], target])))
            current = target
        page.close()
    with data_dir.open() as manager:
        audit = _audit_filters(manager, big)
        time_travel = _time_travel(manager)
    return {
        "audit_filter_p95_ms": round(percentile(audit, 95), 2),
        "audit_filter_p50_ms": round(statistics.median(audit), 2),
        "time_travel_events": time_travel[0],
        "time_travel_100k_s": round(time_travel[1], 2),
        "explorer_first_paint_ms": round(statistics.median(firsts), 1),
        "explorer_first_paint_runs_ms": [round(f, 1) for f in firsts],
        "persona_switch_ms": round(statistics.median(switches), 1),
        "persona_switch_p95_ms": round(percentile(switches, 95), 1),
    }


def _audit_filters(manager: HybridDatabaseManager, persona_id: str) -> list[float]:
    """Milliseconds for a filtered page and its count through the audit trail's read
    model (the queries its view runs), each filter five times."""
    from pjai.app.reads import audit

    last_hour = datetime.now(UTC) - timedelta(hours=1)
    filters = [
        audit.AuditFilter(),
        audit.AuditFilter(persona_id=persona_id),
        audit.AuditFilter(names=("v1.MemoryAdded",)),
        audit.AuditFilter(since=last_hour),
        audit.AuditFilter(outcomes=("confirmed",)),
        audit.AuditFilter(text="topic 5"),
        audit.AuditFilter(persona_id=persona_id, text="no such words"),
    ]
    samples = []
    for _ in range(5):
        for where in filters:
            started = time.perf_counter()
            _ = audit.page(manager, where).result, audit.count(manager, where).result
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def _time_travel(manager: HybridDatabaseManager) -> tuple[int, float]:
    """The log's length and the seconds to rebuild the state as of its last event, as
    the devtools do (tables and primary keys, no secondary indexes)."""
    from pjai.store.timetravel import head_position, state_at

    store = manager.store
    assert store is not None
    head = head_position(store)
    started = time.perf_counter()
    state_at(store, head, indexes=False).close()
    return head, time.perf_counter() - started


def _rss_per_tab(browser: Any, data: Path, tabs: int) -> dict[str, float]:
    data_dir = DataDir(data)
    with data_dir.open() as manager:
        _persona(manager, "Tabs")
    with WebProcess(data) as web:
        pages = [_open_dashboard(browser, web.url)]
        time.sleep(1.0)  # let the first page's work settle before the baseline
        one = web.rss_kb()
        for _ in range(tabs - 1):
            pages.append(_open_dashboard(browser, web.url))
        time.sleep(1.0)
        many = web.rss_kb()
        for page in pages:
            page.close()
    return {
        "server_rss_one_tab_mb": round(one / 1024, 1),
        "server_rss_per_tab_mb": round((many - one) / 1024 / (tabs - 1), 2),
    }
