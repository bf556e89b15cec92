"""Live queries: results pushed to subscribers whenever the data they read changes.

A live query learns what it reads from SQLite: the tables through the authorizer while
its statement is prepared, and, for SQLAlchemy selects, the equality and IN conditions
of its WHERE clause. After each commit the store re-runs only the live queries whose
tables changed in rows that could match those conditions, and a subscriber hears of a
new result only when it differs from the last one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any, Protocol

from pjai.store.changes import UNKNOWN, Changes, RowValues
from pjai.store.query import Row, RowFilters

__all__ = ["LiveHost", "LiveQueries", "LiveQuery", "PreparedQuery", "Subscription"]


class PreparedQuery(Protocol):
    """What a live query knows of its query: the SQL it runs and its row filters."""

    @property
    def sql(self) -> str: ...

    @property
    def filters(self) -> RowFilters: ...


class LiveHost(Protocol):
    """Where live queries run: the store, or the SQL primary while the store is off.

    A host runs a live query's :attr:`~LiveQuery.prepared` query in :meth:`run_live` and
    hands the rows to :meth:`LiveQuery.set_result`; it keeps the live queries that have
    subscribers (:meth:`register_live`) and, after each of its commits, re-runs those
    whose data changed and calls :meth:`LiveQuery.deliver` once it holds no lock.
    """

    @property
    def lock(self) -> threading.RLock:
        """Held while a live query registers, unregisters or runs."""
        ...

    def run_live(self, live: LiveQuery) -> bool:
        """Run ``live``'s query now; whether its result changed."""
        ...

    def register_live(self, live: LiveQuery) -> None:
        """Keep ``live`` current from now on (it has a subscriber)."""
        ...

    def unregister_live(self, live: LiveQuery) -> None:
        """Stop keeping ``live`` current."""
        ...


log = logging.getLogger(__name__)

Callback = Callable[[list[Row]], object]


class Subscription:
    """A callback's registration on a live query; unsubscribe to stop it."""

    def __init__(self, query: LiveQuery, key: int) -> None:
        self._query = query
        self._key = key

    def unsubscribe(self) -> None:
        """Stop calling the callback. Calling it twice is harmless."""
        self._query._remove(self._key)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.unsubscribe()


class LiveQuery:
    """A read query kept current. Create one with :meth:`pjai.store.Store.live`.

    ``result`` is the current result. ``subscribe(callback)`` calls ``callback(rows)``
    with every new result (and at once with the current one unless
    ``immediate=False``). ``async for rows in live_query`` yields the current result,
    then each new one; a slow consumer skips to the latest. While it has no
    subscriber a live query costs nothing on commits.
    """

    def __init__(self, store: LiveHost, prepared: PreparedQuery) -> None:
        self._store = store
        self._prepared = prepared
        self._subscribers: dict[int, _Subscriber] = {}
        self._next_key = 0
        self._result: list[Row] = []
        self._tables: frozenset[str] | None = None
        self._latest: tuple[int, list[Row]] = (0, [])
        """The result's version and rows, set together (delivery reads them unlocked)."""
        self._fresh = False
        self._delivery = threading.RLock()  # a subscriber may commit from its callback
        self._delivering = False
        """Whether a thread is calling the subscribers (see :meth:`deliver`)."""
        self.runs = 0
        """How many times the query ran (first run and re-runs after commits)."""
        self.last_run_s: float | None = None
        """Seconds its last run took, when its host measures it (the store does)."""

    @property
    def sql(self) -> str:
        """The SQL this live query runs."""
        return self._prepared.sql

    @property
    def subscribers(self) -> int:
        """How many subscribers it has now."""
        return len(self._subscribers)

    @property
    def tables(self) -> frozenset[str]:
        """The tables SQLite reported the query reads (known after the first run)."""
        return self._tables or frozenset()

    @property
    def filters(self) -> RowFilters:
        """Column conditions that let commits to other rows skip this query."""
        return self._prepared.filters

    @property
    def result(self) -> list[Row]:
        """The current result."""
        if not self._fresh:
            self._store.run_live(self)
        return self._result

    def subscribe(self, callback: Callback, *, immediate: bool = True) -> Subscription:
        """Call ``callback(rows)`` on every new result; also now, if ``immediate``."""
        # Held until the first call is made: a delivery racing in from another thread
        # reaches the new subscriber after it, never before with newer rows.
        with self._delivery:
            with self._store.lock:
                key = self._next_key
                self._next_key += 1
                subscriber = _Subscriber(callback)
                self._subscribers[key] = subscriber
                if len(self._subscribers) == 1:
                    self._store.register_live(self)
                if not self._fresh:
                    self._store.run_live(self)
                subscriber.seen, rows = self._latest
            if immediate:
                self._call(callback, rows)
        return Subscription(self, key)

    def close(self) -> None:
        """Remove every subscriber."""
        with self._store.lock:
            self._subscribers.clear()
            self._store.unregister_live(self)
            self._fresh = False

    def __aiter__(self) -> AsyncIterator[list[Row]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[list[Row]]:
        loop = asyncio.get_running_loop()
        changed = asyncio.Event()
        latest: list[list[Row]] = []

        def on_change(rows: list[Row]) -> None:
            latest[:] = [rows]
            loop.call_soon_threadsafe(changed.set)

        # The current result comes through the subscriber too: read apart, it could be
        # a newer one than the subscriber starts from, and be yielded twice.
        subscription = self.subscribe(on_change)
        given: list[Row] | None = None
        try:
            while True:
                await changed.wait()
                changed.clear()
                if latest[0] is not given:  # not a late wake-up for a result yielded
                    given = latest[0]
                    yield given
        finally:
            subscription.unsubscribe()

    @property
    def host(self) -> LiveHost:
        """Where the query runs now."""
        return self._store

    @property
    def prepared(self) -> PreparedQuery:
        """The query as its host runs it."""
        return self._prepared

    def move(self, host: LiveHost, prepared: PreparedQuery) -> None:
        """Run on ``host`` from now on, keeping the subscribers (the hybrid manager uses
        this when the reactive store is switched on or off)."""
        with self._store.lock:
            subscribed = bool(self._subscribers)
            if subscribed:
                self._store.unregister_live(self)
        self._store, self._prepared = host, prepared
        self._tables = None  # the new host finds what the query reads
        # _fresh stays: the first run there is compared with the last result here.
        changed = False
        if subscribed:
            with host.lock:
                host.register_live(self)
                changed = host.run_live(self)
        if changed:
            self.deliver()

    # -- the host's side: under its lock, then delivery outside it -------------------

    def set_result(self, rows: list[Row], tables: frozenset[str]) -> bool:
        """Keep a new result, read from ``tables``; whether it differs from the last one.

        Hosts call this from :meth:`LiveHost.run_live`, holding their lock."""
        self.runs += 1
        self._tables = tables
        fresh = self._fresh
        self._fresh = bool(self._subscribers)
        if fresh and rows == self._result:
            return False
        self._result = rows
        self._latest = (self._latest[0] + 1, rows)
        return True

    def _affected_by(self, changes: Changes) -> bool:
        touched = self.tables & changes.tables
        if not touched:
            return False
        for table in touched:
            conditions = self._prepared.filters.get(table)
            rows = changes.rows.get(table)
            if not conditions or rows is None:
                return True
            for old, new in rows:
                if _matches(old, conditions) or _matches(new, conditions):
                    return True
        return False

    def _remove(self, key: int) -> None:
        with self._store.lock:
            if self._subscribers.pop(key, None) is not None and not self._subscribers:
                self._store.unregister_live(self)
                self._fresh = False

    def deliver(self) -> None:
        """Call the subscribers with the latest result if they have not had it; hosts
        call this after a commit, holding no lock.

        One thread at a time calls the subscribers, result after result in order, until
        each has had the latest. A delivery asked for meanwhile (by another thread's
        commit, or by a commit a subscriber makes from its callback) is left to it: a
        subscriber never gets an older result after a newer one.
        """
        with self._delivery:
            if self._delivering:
                return
            self._delivering = True
        try:
            while True:
                with self._delivery:
                    version, rows = self._latest
                    due = [
                        (key, subscriber)
                        for key, subscriber in list(self._subscribers.items())
                        if subscriber.seen < version
                    ]
                    if not due:
                        self._delivering = False
                        return
                    for _, subscriber in due:
                        subscriber.seen = version
                for key, subscriber in due:
                    if key in self._subscribers:  # not unsubscribed by an earlier callback
                        self._call(subscriber.callback, rows)
        except BaseException:
            with self._delivery:
                self._delivering = False
            raise

    def _call(self, callback: Callback, rows: list[Row]) -> None:
        try:
            callback(rows)
        except Exception:
            log.exception("live query subscriber %r failed; other subscribers go on", callback)


class _Subscriber:
    """A subscriber's callback and the version of the last result it was given."""

    __slots__ = ("callback", "seen")

    def __init__(self, callback: Callback) -> None:
        self.callback = callback
        self.seen = 0


class LiveQueries:
    """The live queries that have subscribers, and the row values commits must report."""

    def __init__(self) -> None:
        self._queries: dict[int, LiveQuery] = {}
        self.watch: dict[str, set[str]] = {}
        """Per table, the columns whose old and new values commits must report."""

    def __len__(self) -> int:
        return len(self._queries)

    def __iter__(self) -> Iterator[LiveQuery]:
        return iter(list(self._queries.values()))

    def add(self, live: LiveQuery) -> None:
        """Keep ``live`` current from now on."""
        self._queries[id(live)] = live
        self._rewatch()

    def discard(self, live: LiveQuery) -> None:
        """Stop keeping ``live`` current."""
        if self._queries.pop(id(live), None) is not None:
            self._rewatch()

    def affected(self, changes: Changes) -> list[LiveQuery]:
        """The live queries whose result ``changes`` may have changed."""
        return [live for live in list(self._queries.values()) if live._affected_by(changes)]

    def close_all(self) -> None:
        """Close every live query."""
        for live in list(self._queries.values()):
            live.close()

    def _rewatch(self) -> None:
        watch: dict[str, set[str]] = {}
        for live in self._queries.values():
            for table, conditions in live.filters.items():
                watch.setdefault(table, set()).update(conditions)
        self.watch = watch


def _matches(values: RowValues | None, conditions: Mapping[str, frozenset[Any]]) -> bool:
    if values is None:
        return False
    for column, allowed in conditions.items():
        value = values.get(column, UNKNOWN)
        if value is not UNKNOWN and value not in allowed:
            return False
    return True
