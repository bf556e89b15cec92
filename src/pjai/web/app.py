"""The web app over one data directory: its services, the watch on other processes'
commits, and the root page that every view lives in."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from pjai.app import (
    MAX_UPLOAD_MB,
    Bookmarks,
    Conversations,
    DataDir,
    Memories,
    Personas,
    SyncLink,
)
from pjai.hybrid import HybridDatabaseManager
from pjai.resource import Resource
from pjai.web.heavy import (
    CONSOLE,
    ERASURE,
    EXPORT,
    IMPORT,
    INGEST,
    OPTIMIZER,
    SEARCH,
    SUBJECT_EXPORT,
    TIME_TRAVEL,
    HeavyWork,
)
from pjai.web.uploads import upload_bytes

__all__ = ["HEALTH_MAX_AGE_S", "WATCH_INTERVAL_S", "SharedReading", "WebApp"]

T = TypeVar("T")

HEALTH_MAX_AGE_S = 5.0
"""How old a health reading may be before a page that shows it reads it again."""

log = logging.getLogger(__name__)

WATCH_INTERVAL_S = 0.01
"""How often the app looks for commits other processes made (the CLI, a sync client)."""


class SharedReading(Generic[T]):
    """A reading every tab shares: ``read()`` runs again only once the last result is
    older than ``max_age_s``, one read at a time (others wait and take its result).
    For what is costly and not table data, such as health, which checks the store file
    while holding the locks commits need."""

    def __init__(self, read: Callable[[], T], max_age_s: float) -> None:
        self._read = read
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._value: T | None = None
        self._at: float | None = None

    def get(self) -> T:
        """The latest reading, read again if it is too old."""
        with self._lock:
            now = time.monotonic()
            if self._value is None or self._at is None or now - self._at > self.max_age_s:
                self._value = self._read()
                self._at = time.monotonic()
            return self._value


@dataclass(frozen=True, slots=True)
class Services:
    """The application services the views call, over one manager."""

    personas: Personas
    memories: Memories
    bookmarks: Bookmarks
    conversations: Conversations


class WebApp(Resource):
    """What every page of one running app shares: the data directory, its manager and
    the services over it, a thread that takes in commits made elsewhere (another
    process on the same directory, or a sync client) so that live queries see them, the
    background indexer of memory vectors, and the threads of the views' long work
    (:mod:`pjai.web.heavy`).

    Close it to stop the threads and the manager.
    """

    def __init__(
        self,
        data_dir: DataDir,
        *,
        watch_interval_s: float = WATCH_INTERVAL_S,
        max_upload_mb: int = MAX_UPLOAD_MB,
    ) -> None:
        self.data_dir = data_dir
        self.max_upload_mb = max_upload_mb
        """The largest upload taken, in MB: each ``ui.upload`` tells the browser, and
        :class:`~pjai.web.uploads.UploadLimit` refuses more on the server."""
        self.max_upload_bytes = upload_bytes(max_upload_mb)
        """:attr:`max_upload_mb` in bytes."""
        self.manager: HybridDatabaseManager = data_dir.open()
        memories = Memories(self.manager)
        self.services = Services(
            personas=Personas(self.manager, source="web"),
            memories=memories,
            bookmarks=Bookmarks(self.manager),
            conversations=Conversations(self.manager),
        )
        self.sync = SyncLink(data_dir, self.manager)
        """The app's own sync client, connected and disconnected from the devtools."""
        self.login_required = False
        """Whether pages are behind a login (the app listens off loopback)."""
        self.console = HeavyWork(CONSOLE)
        """Runs the SQL console's queries, a few at a time, off the other views' threads."""
        self.time_travel = HeavyWork(TIME_TRAVEL)
        """Runs time travel's replays, a few at a time, off the other views' threads."""
        self.exports = HeavyWork(EXPORT)
        """Writes the devtools' archive exports, one at a time, off the other views' threads."""
        self.imports = HeavyWork(IMPORT)
        """Runs the devtools' archive imports, one at a time, off the other views' threads."""
        self.optimizer = HeavyWork(OPTIMIZER)
        """Runs the explorer's optimizer previews and runs, a few at a time, off the other
        views' threads."""
        self.searches = HeavyWork(SEARCH)
        """Runs the explorer's searches, a few at a time, off the other views' threads."""
        self.subject_exports = HeavyWork(SUBJECT_EXPORT)
        """Writes the personas view's exports for a data subject, one at a time, off the
        other views' threads."""
        self.erasures = HeavyWork(ERASURE)
        """Runs the personas view's erasures for good, one at a time, off the other views'
        threads."""
        self.ingests = HeavyWork(INGEST)
        """Makes the conversations view's memories of a conversation, one run at a time,
        off the other views' threads."""
        self.health = SharedReading(self.manager.health, HEALTH_MAX_AGE_S)
        """Health of the store and each SQL shard, read at most every few seconds."""
        self.indexer = memories.background_indexer()
        """Gives new memories their vectors off the commit path (``None``: semantic
        search cannot be used here)."""
        self._interval = watch_interval_s
        self._stopped = threading.Event()
        self._watch = threading.Thread(
            target=self._watch_others, name="pjai-web-watch", daemon=True
        )
        self._watch.start()

    def _watch_others(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self.manager.refresh()
            except Exception:
                # A failed look (the store file briefly locked, say) is retried on the
                # next tick; panels whose queries fail show it themselves.
                log.warning("looking for other processes' commits failed", exc_info=True)

    def close(self) -> None:
        """Stop the long work, watching and indexing, and close the manager."""
        long_work = (
            self.console,
            self.time_travel,
            self.exports,
            self.imports,
            self.optimizer,
            self.subject_exports,
            self.erasures,
            self.ingests,
            self.searches,
        )
        for work in long_work:
            work.close()
        self._stopped.set()
        self._watch.join()
        if self.indexer is not None:
            self.indexer.close()
        self.manager.close()
