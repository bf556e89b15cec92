"""Catching SQL up again after it fell behind: one retry at a time, with backoff.

The first retry waits 0.2 s and each one after it twice as long, up to 30 s, until SQL
has caught up (:meth:`RetryTimer.reset`) or the manager closes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["MAX_BACKOFF_S", "RETRY_DELAYS_S", "RetryTimer"]

RETRY_DELAYS_S = (0.2, 0.5, 1.0, 2.0)
MAX_BACKOFF_S = 30.0


class RetryTimer:
    """Runs ``attempt`` under ``lock`` on a daemon timer, after a delay that doubles
    each time; an attempt that fails again calls :meth:`schedule` itself."""

    def __init__(self, lock: threading.RLock, attempt: Callable[[], None]) -> None:
        self._lock = lock
        self._attempt = attempt
        self._timer: threading.Timer | None = None
        self._backoff = RETRY_DELAYS_S[0]
        self._closed = False

    def schedule(self) -> None:
        """Attempt again after the next delay, unless an attempt is already waiting or
        running, or the timer is closed."""
        if self._closed or (self._timer is not None and self._timer.is_alive()):
            return
        delay, self._backoff = self._backoff, min(self._backoff * 2, MAX_BACKOFF_S)
        self._timer = threading.Timer(delay, self._run)
        self._timer.daemon = True
        self._timer.start()

    def reset(self) -> None:
        """Caught up: the next retry waits the first delay again."""
        self._backoff = RETRY_DELAYS_S[0]

    def close(self) -> None:
        """Stop retrying: a waiting attempt is cancelled, none is scheduled again."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()

    def _run(self) -> None:
        with self._lock:
            self._timer = None
            if not self._closed:
                self._attempt()
