"""The background indexer: memory vectors catch up off the commit path.

A commit never waits for the model. In a long-running process (the web app) a
:class:`VectorIndexer` thread looks at the data's position every ``interval_s`` and,
when it moved (a commit here, in another process, or from a sync), brings the vectors up to
date with :meth:`~pjai.memory.embeddings.Embeddings.index`. A one-shot command has no
such thread: its semantic search catches up before searching. ``pjai doctor`` shows how
many memories wait for a vector (:class:`~pjai.memory.vector_status.VectorStatus`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pjai.memory.backend import Backend
from pjai.memory.embeddings import Embeddings
from pjai.resource import Resource

__all__ = ["INTERVAL_S", "IndexerState", "VectorIndexer"]

INTERVAL_S = 1.0
"""How often the indexer looks for new commits."""

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IndexerState:
    """What the indexer has done so far."""

    running: bool
    indexed: int
    """Memories given an up-to-date vector since it started."""
    error: str | None
    """The last run's failure (``None`` once a run succeeds)."""


class VectorIndexer(Resource):
    """A thread that keeps ``open_vectors()``'s vectors up to date with ``backend``
    whenever ``position()`` (any value that changes with the data) changes.
    :meth:`close` stops it (a run in progress finishes its current chunk first)."""

    def __init__(
        self,
        open_vectors: Callable[[], Embeddings],
        backend: Backend,
        position: Callable[[], object],
        *,
        interval_s: float = INTERVAL_S,
    ) -> None:
        self._open = open_vectors
        self._backend = backend
        self._position = position
        self._interval = interval_s
        self._stopped = threading.Event()
        self._woken = threading.Event()
        self._lock = threading.Lock()
        self._ran = threading.Condition(self._lock)
        """Notified after every run, done or failed."""
        self._indexed = 0
        self._caught_up: object = None
        self._failed_at: object = None
        self._error: str | None = None
        self._thread = threading.Thread(target=self._run, name="pjai-vector-indexer", daemon=True)
        self._thread.start()

    @property
    def state(self) -> IndexerState:
        with self._lock:
            return IndexerState(self._thread.is_alive(), self._indexed, self._error)

    def wake(self) -> None:
        """Look for new commits now rather than at the next interval."""
        self._woken.set()

    def wait_caught_up(self, timeout_s: float) -> bool:
        """Wait until the vectors are current with the data; whether they are. Returns
        at once, ``False``, when the run for the current data failed or the thread is
        gone."""
        deadline = time.monotonic() + timeout_s
        while True:
            position = self._position()
            with self._ran:
                if position == self._caught_up:
                    return True
                left = deadline - time.monotonic()
                if position == self._failed_at or left <= 0 or not self._thread.is_alive():
                    return False
                self.wake()
                self._ran.wait(left)

    def _run(self) -> None:
        try:
            vectors = self._open()
        except Exception as exc:
            log.warning("opening the memory vectors failed: no background indexing", exc_info=True)
            self._failed(None, exc)
            return
        try:
            while not self._stopped.is_set():
                try:
                    position = self._position()
                except Exception as exc:  # the manager closing under it, say
                    self._failed(None, exc)
                    return
                with self._lock:
                    due = position not in (self._caught_up, self._failed_at)
                if due:
                    self._catch_up(vectors, position)
                self._woken.wait(self._interval)
                self._woken.clear()
        finally:
            vectors.close()

    def _failed(self, position: object, exc: Exception) -> None:
        with self._ran:
            self._failed_at = position
            self._error = f"{type(exc).__name__}: {exc}"
            self._ran.notify_all()

    def _catch_up(self, vectors: Embeddings, position: object) -> None:
        try:
            indexed = vectors.index(self._backend, stop=self._stopped.is_set)
        except Exception as exc:
            # The next commit tries again; the cause stays visible meanwhile.
            log.warning("indexing memory vectors failed", exc_info=True)
            self._failed(position, exc)
            return
        with self._ran:
            self._indexed += indexed
            if not self._stopped.is_set():
                self._caught_up = position
            self._error = None
            self._ran.notify_all()

    def close(self) -> None:
        """Stop the thread and close its vectors."""
        self._stopped.set()
        self._woken.set()
        self._thread.join()
