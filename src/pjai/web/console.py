"""The SQL console's queries from every tab: a few at a time, on threads of their own.

A console query may run until its time limit stops it. On the event loop's default
executor, which the other views' off-loop work shares (health readings, time travel,
flags, exports, the sync client), a handful of tabs re-running such queries would keep
every thread busy and that work would wait behind them. Console queries therefore get
a small pool of their own with no queue behind it: a query beyond its threads is
refused at once, so no tab can make the others wait, nor pile up runs. A tab runs one
query at a time: pressing Run again, or leaving the console and coming back while its
query runs, would otherwise let one tab take every thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from pjai.errors import QueryError
from pjai.resource import Resource

__all__ = ["CONSOLE_THREADS", "ConsoleQueries"]

T = TypeVar("T")

CONSOLE_THREADS = 2
"""How many console queries may run at once, across every tab of the app."""


class ConsoleQueries(Resource):
    """Runs console queries on ``threads`` threads of their own, one per tab at a time,
    refusing one with :class:`~pjai.errors.QueryError` when they are all busy or its tab
    already has one running.

    A query holds its thread until it ends, even when the tab that asked for it has
    gone: a query stops only at its time limit, and its thread is busy until then.
    Close it with the app: it waits for the queries that still run.
    """

    def __init__(self, threads: int = CONSOLE_THREADS) -> None:
        self.threads = threads
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="pjai-console")
        self._lock = threading.Lock()
        self._running: set[str] = set()
        self._closed = False

    @property
    def running(self) -> int:
        """How many console queries run now."""
        return len(self._running)

    async def run(self, query: Callable[[], T], *, tab: str) -> T:
        """The result of ``query()`` for ``tab`` (a page's client id), run on one of the
        console's threads; refused at once if the tab's last query still runs or every
        thread is busy (nothing waits in a queue)."""
        with self._lock:
            if self._closed:
                raise QueryError("the app is shutting down: the console runs no more queries")
            if tab in self._running:
                raise QueryError("this tab's last query is still running; try again when it ends")
            if len(self._running) >= self.threads:
                n = len(self._running)
                many = "query" if n == 1 else "queries"
                raise QueryError(f"the console is busy with {n} {many}; try again when one ends")
            future = self._pool.submit(query)
            self._running.add(tab)
        # Freed when the query ends, not when the page stops waiting for it.
        future.add_done_callback(lambda _: self._ended(tab))
        return await asyncio.wrap_future(future)

    def _ended(self, tab: str) -> None:
        with self._lock:
            self._running.discard(tab)

    def close(self) -> None:
        """Refuse new queries and wait for those that run (each stops at its limit)."""
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=True)
