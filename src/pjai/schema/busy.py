"""Waiting for the lock another connection holds on one of PJai's SQLite files.

One policy for every SQLite connection PJai opens: the store's (apsw installs it as the
connection's busy handler) and an SQLite SQL primary's (the sqlite3 module has no busy
handler to install, so :mod:`pjai.sql.engine` calls it when taking the write lock).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

__all__ = ["BUSY_LOOK_S", "busy_handler"]

BUSY_LOOK_S = (0.001, 0.01)
"""The shortest and longest wait between two looks at a lock another connection holds."""


def busy_handler(timeout_s: float) -> Callable[[int], bool]:
    """An SQLite busy handler that waits up to ``timeout_s`` for a lock, looking again
    every few milliseconds: called with how many times it was called before for the
    same lock (0 the first time), it waits and says whether to look again.

    SQLite's own busy handler sleeps longer and longer between looks, up to 100 ms: in
    5 s a waiter looks about 60 times, and processes committing one after another, each
    leaving the write lock free for a moment between two commits, can take it every time
    in between, so that the waiter waits long or gives up. Looking every 1 to 10 ms
    (:data:`BUSY_LOOK_S`), at random so that waiters do not fall in step, finds those
    moments; looking more often hands the lock from process to process so often that the
    commits of all of them together slow down.
    """
    deadline = 0.0

    def busy(calls: int) -> bool:
        nonlocal deadline
        now = time.monotonic()
        if calls == 0:
            deadline = now + timeout_s
        elif now >= deadline:
            return False
        time.sleep(random.uniform(*BUSY_LOOK_S))
        return True

    return busy
