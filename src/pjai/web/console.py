"""The SQL console's queries from every tab: a few at a time, on threads of their own.

A console query may run until its time limit stops it. On the event loop's default
executor, which the other views' off-loop work shares (health readings, time travel,
flags, exports, the sync client), a handful of tabs re-running such queries would keep
every thread busy and that work would wait behind them. Console queries therefore get
a small pool of their own with no queue behind it: a query beyond its threads is
refused at once, so no tab can make the others wait, nor pile up runs.
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
    """Runs console queries on ``threads`` threads of their own, refusing one with
    :class:`~pjai.errors.QueryError` when they are all busy.

    A query holds its thread until it ends, even when the tab that asked for it has
    gone: a query stops only at its time limit, and its thread is busy until then.
    Close it with the app: it waits for the queries that still run.
    """

    def __init__(self, threads: int = CONSOLE_THREADS) -> None:
        self.threads = threads
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="pjai-console")
        self._lock = threading.Lock()
        self._running = 0
        self._closed = False

    @property
    def running(self) -> int:
        """How many console queries run now."""
        return self._running

    async def run(self, query: Callable[[], T]) -> T:
        """The result of ``query()``, run on one of the console's threads; refused at
        once if every thread is busy (nothing waits in a queue)."""
        with self._lock:
            if self._closed:
                raise QueryError("the app is shutting down: the console runs no more queries")
            if self._running >= self.threads:
                many = "query" if self._running == 1 else "queries"
                raise QueryError(
                    f"the console is busy with {self._running} {many}; try again when one ends"
                )
            future = self._pool.submit(query)
            self._running += 1
        # Freed when the query ends, not when the page stops waiting for it.
        future.add_done_callback(self._ended)
        return await asyncio.wrap_future(future)

    def _ended(self, _: object) -> None:
        with self._lock:
            self._running -= 1

    def close(self) -> None:
        """Refuse new queries and wait for those that run (each stops at its limit)."""
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=True)
