"""The views' long work, each kind a few at a time on threads of its own.

Some of what a page asks for may take long on a big store: a console query (until its
time limit), a time travel replay of the event log, an archive's export or import, the
optimizer's preview or run, a search of the memories, a persona's data exported for its
data subject or erased for good, a conversation's messages made into memories. On a
shared pool, such as the event loop's default executor, which the views' light off-loop
work uses (health readings, flags, the sync client), a handful of tabs asking for such
work would keep every thread busy and that work would wait behind them; on the event
loop itself, one such piece would hold every tab's page until it ended. Each kind
therefore gets a small pool of its own with no queue behind it: work beyond its threads
is refused at once, so no tab can make the others wait, nor pile up runs. A tab runs
one piece of each kind at a time: pressing a button again, or leaving a view and coming
back while its work runs, would otherwise let one tab take every thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from pjai.errors import BusyError
from pjai.resource import Resource

__all__ = [
    "CONSOLE",
    "ERASURE",
    "EXPORT",
    "IMPORT",
    "INGEST",
    "OPTIMIZER",
    "SEARCH",
    "SUBJECT_EXPORT",
    "TIME_TRAVEL",
    "HeavyWork",
    "Kind",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Kind:
    """A kind of long work: what its refusals call it (``name``, and one or ``many``
    pieces of it) and how many pieces may run at once across every tab of the app."""

    name: str
    one: str
    many: str
    threads: int

    @property
    def thread_name(self) -> str:
        """The name its threads begin with (``pjai-time-travel``)."""
        return "pjai-" + self.name.removeprefix("the ").replace(" ", "-")


CONSOLE = Kind("the console", "query", "queries", threads=2)
"""SQL console queries: each may run until its time limit."""
TIME_TRAVEL = Kind("time travel", "replay", "replays", threads=2)
"""Time travel's replays of the event log up to a position."""
EXPORT = Kind("archive export", "export", "exports", threads=1)
"""Archive exports: each holds the store's lock while it writes, so a second would only
wait for the first."""
IMPORT = Kind("archive import", "import", "imports", threads=1)
"""Archive imports into a new data directory: one at a time, so that two from the app
into the same directory never meet."""
SUBJECT_EXPORT = Kind("data subject export", "export", "exports", threads=1)
"""A persona's data exported for its data subject (:func:`pjai.app.export_subject`): it
takes the whole event log into memory and decodes every event in Python to find the
persona's; a second at once would hold a second copy of the log and only share the
interpreter's lock with the first."""
ERASURE = Kind("persona erasure", "erasure", "erasures", threads=1)
"""Erasures for good (:func:`pjai.app.erase_persona`): each commits, destroys keys and
rewrites the store's file under the store's lock, then SQL's: a second at once would
only wait for the first."""
INGEST = Kind("conversation ingest", "ingest", "ingests", threads=1)
"""A conversation's messages made into memories (:meth:`pjai.app.Memories.ingest`), each
message once: a long conversation takes long, and one run at a time across all tabs
keeps two runs over the same conversation from meeting."""
OPTIMIZER = Kind("the optimizer", "optimization", "optimizations", threads=2)
"""The optimizer's previews and runs, each scoring every memory of a persona. Runs for
one persona take turns (:func:`pjai.memory.optimizer.optimize`), but each waiting
would hold a thread."""
SEARCH = Kind("search", "search", "searches", threads=2)
"""The explorer's searches: a semantic or hybrid one compares the query with the vector
of every memory it may find, and loads the embedding model the first time."""


class HeavyWork(Resource):
    """Runs one kind of long work on ``kind.threads`` threads of its own (``threads``
    to have another number), one piece per tab at a time, refusing one with
    :class:`~pjai.errors.BusyError` when they are all busy or its tab already has one
    running.

    A piece holds its thread until it ends, even when the tab that asked for it has
    gone: it runs to its end (a console query to its time limit at most), and its
    thread is busy until then.
    Close it with the app: it waits for the work that still runs.
    """

    def __init__(self, kind: Kind, threads: int | None = None) -> None:
        self.kind = kind
        self.threads = kind.threads if threads is None else threads
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix=kind.thread_name)
        self._lock = threading.Lock()
        self._running: set[str] = set()
        self._closed = False

    @property
    def running(self) -> int:
        """How many pieces of the work run now."""
        return len(self._running)

    async def run(self, work: Callable[[], T], *, tab: str) -> T:
        """The result of ``work()`` for ``tab`` (a page's client id), run on one of the
        kind's threads; refused at once if the tab's last piece still runs or every
        thread is busy (nothing waits in a queue)."""
        kind = self.kind
        with self._lock:
            if self._closed:
                raise BusyError(f"the app is shutting down: {kind.name} runs no more {kind.many}")
            if tab in self._running:
                raise BusyError(
                    f"this tab's last {kind.one} is still running; try again when it ends"
                )
            if len(self._running) >= self.threads:
                n = len(self._running)
                pieces, ends = (kind.one, "it") if n == 1 else (kind.many, "one")
                raise BusyError(
                    f"{kind.name} is busy with {n} {pieces}; try again when {ends} ends"
                )
            future = self._pool.submit(work)
            self._running.add(tab)
        # Freed when the work ends, not when the page stops waiting for it.
        future.add_done_callback(lambda _: self._ended(tab))
        return await asyncio.wrap_future(future)

    def _ended(self, tab: str) -> None:
        with self._lock:
            self._running.discard(tab)

    def close(self) -> None:
        """Refuse new work and wait for the work that runs to end."""
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=True)
