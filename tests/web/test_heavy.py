"""Long work on threads of its own: a few pieces at a time, the rest refused at once."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from pjai.app import DataDir
from pjai.errors import BusyError
from pjai.web import WebApp
from pjai.web.heavy import CONSOLE, TIME_TRAVEL, HeavyWork, Kind
from tests.web.conftest import Held, until

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def held_for(
    kind: Kind, threads: int, *tabs: str
) -> AsyncIterator[tuple[HeavyWork, Held, list[asyncio.Future[str]]]]:
    """``kind``'s work on ``threads`` threads, running a piece for each of ``tabs``; the
    pieces end with "done" once the test sets the ``Held``'s release (set at the end in
    any case)."""
    held = Held(lambda: "done")
    with HeavyWork(kind, threads=threads) as work:
        try:
            running: list[asyncio.Future[str]] = [
                asyncio.ensure_future(work.run(held, tab=tab)) for tab in tabs
            ]
            await until(lambda: work.running == len(tabs), "the held pieces to start")
            yield work, held, running
        finally:
            held.release.set()


def threads_of(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(name)]


async def test_a_query_beyond_the_threads_is_refused_until_one_ends() -> None:
    async with held_for(CONSOLE, 1, "first") as (console, held, [first]):
        with pytest.raises(BusyError, match=r"^the console is busy with 1 query; try again"):
            await console.run(lambda: "second", tab="second")
        held.release.set()
        assert await first == "done"
        assert await console.run(lambda: "third", tab="second") == "third"


async def test_a_tab_runs_one_query_at_a_time() -> None:
    async with held_for(CONSOLE, 2, "first") as (console, held, [first]):
        with pytest.raises(BusyError, match=r"^this tab's last query is still running"):
            await console.run(lambda: "again", tab="first")
        assert await console.run(lambda: "other", tab="second") == "other"
        held.release.set()
        assert await first == "done"
        assert await console.run(lambda: "again", tab="first") == "again"


async def test_a_query_keeps_its_thread_after_its_page_stops_waiting_until_it_ends() -> None:
    async with held_for(CONSOLE, 1, "first") as (console, held, [waiting]):
        waiting.cancel()  # the tab was closed
        with pytest.raises(asyncio.CancelledError):
            await waiting
        with pytest.raises(BusyError, match="busy"):
            await console.run(lambda: "queued behind it", tab="second")
        held.release.set()
        await until(lambda: console.running == 0, "the query to end")
        assert await console.run(lambda: "next", tab="second") == "next"


async def test_the_app_closes_the_threads_of_its_long_work(tmp_path: Path) -> None:
    with WebApp(DataDir(tmp_path / "data")) as web:
        kinds = [web.console, web.time_travel, web.exports, web.imports, web.optimizer]
        for work in kinds:
            assert await work.run(lambda: "ran", tab="first") == "ran"
            assert threads_of(work.kind.thread_name)
    assert [t for work in kinds for t in threads_of(work.kind.thread_name)] == []
    with pytest.raises(
        BusyError, match=r"^the app is shutting down: the console runs no more queries$"
    ):
        await web.console.run(lambda: "after", tab="first")
    with pytest.raises(BusyError, match=r"^the app is shutting down: archive import runs no more"):
        await web.imports.run(lambda: "after", tab="first")


async def test_a_refusal_says_what_is_busy_in_the_words_of_its_kind() -> None:
    async with held_for(TIME_TRAVEL, 2, "first", "second") as (replays, held, running):
        with pytest.raises(BusyError) as refused:
            await replays.run(lambda: "third", tab="third")
        assert str(refused.value) == "time travel is busy with 2 replays; try again when one ends"
        with pytest.raises(BusyError) as again:
            await replays.run(lambda: "again", tab="first")
        assert str(again.value) == (
            "this tab's last replay is still running; try again when it ends"
        )
        held.release.set()
        assert [await replay for replay in running] == ["done", "done"]
