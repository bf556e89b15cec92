"""The console's own threads: a few queries at a time, the rest refused at once."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from pjai.app import DataDir
from pjai.errors import QueryError
from pjai.web import WebApp
from pjai.web.console import ConsoleQueries
from tests.web.conftest import WAIT_S, until

pytestmark = pytest.mark.anyio


def held(release: threading.Event) -> str:
    """A query that goes on until ``release`` is set."""
    if not release.wait(4 * WAIT_S):
        raise AssertionError("the test never let its query end")
    return "done"


def console_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("pjai-console")]


async def test_a_query_beyond_the_threads_is_refused_until_one_ends() -> None:
    release = threading.Event()
    with ConsoleQueries(threads=1) as console:
        try:
            first = asyncio.ensure_future(console.run(lambda: held(release), tab="first"))
            await until(lambda: console.running == 1, "the first query to start")
            with pytest.raises(QueryError, match=r"^the console is busy with 1 query; try again"):
                await console.run(lambda: "second", tab="second")
            release.set()
            assert await first == "done"
            assert await console.run(lambda: "third", tab="second") == "third"
        finally:
            release.set()


async def test_a_tab_runs_one_query_at_a_time() -> None:
    release = threading.Event()
    with ConsoleQueries(threads=2) as console:
        try:
            first = asyncio.ensure_future(console.run(lambda: held(release), tab="first"))
            await until(lambda: console.running == 1, "the first query to start")
            with pytest.raises(QueryError, match=r"^this tab's last query is still running"):
                await console.run(lambda: "again", tab="first")
            assert await console.run(lambda: "other", tab="second") == "other"
            release.set()
            assert await first == "done"
            assert await console.run(lambda: "again", tab="first") == "again"
        finally:
            release.set()


async def test_a_query_keeps_its_thread_after_its_page_stops_waiting_until_it_ends() -> None:
    release = threading.Event()
    with ConsoleQueries(threads=1) as console:
        try:
            waiting = asyncio.ensure_future(console.run(lambda: held(release), tab="first"))
            await until(lambda: console.running == 1, "the query to start")
            waiting.cancel()  # the tab was closed
            with pytest.raises(asyncio.CancelledError):
                await waiting
            with pytest.raises(QueryError, match="busy"):
                await console.run(lambda: "queued behind it", tab="second")
            release.set()
            await until(lambda: console.running == 0, "the query to end")
            assert await console.run(lambda: "next", tab="second") == "next"
        finally:
            release.set()


async def test_the_app_closes_its_console_threads(tmp_path: Path) -> None:
    with WebApp(DataDir(tmp_path / "data")) as web:
        assert await web.console.run(lambda: "ran", tab="first") == "ran"
        assert console_threads()
    assert console_threads() == []
    with pytest.raises(QueryError, match="shutting down"):
        await web.console.run(lambda: "after", tab="first")
