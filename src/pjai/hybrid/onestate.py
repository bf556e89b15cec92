"""The store and every SQL shard read as they stood at one moment, for
:func:`~pjai.hybrid.integrity.verify`: each side in a read transaction begun while the
store file's write lock is held (:func:`one_state`), and a shard's rows read on its
pinned connection, or on a new one where its state could not be held (:func:`reading`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from pjai.errors import SqlError, StoreError
from pjai.sql.shards import Shard, ShardSet
from pjai.store import Store
from pjai.store.filehead import FileHead

__all__ = ["Pinned", "one_state", "reading"]

Pinned = dict[int, Connection]
"""Per shard (by its place), a connection reading one state of it in a transaction."""


@contextmanager
def one_state(store: Store, shards: ShardSet) -> Iterator[Pinned]:
    """Read the store and every shard, for the block, as they stood at one moment.

    Other processes commit to SQL while they hold the store file's write lock (as their
    store transaction's last step, or with the store off, where another writer may take
    it as they note their places in it just before SQL's commit: the store lacks those
    events either way, until it takes them in), so with that lock held for an instant, a
    read transaction begun on each side sees the same history; the lock is let go before
    the tables are read. The caller holds the store's lock (commits of
    this process wait): taken after the file's, it would stop a thread of ours that holds
    the file's. A shard whose state cannot be held (a damaged file) is read as it goes.
    """
    with ExitStack() as stack:
        with _others_held(store):
            stack.enter_context(store.snapshot())
            store.query("SELECT count(*) AS n FROM sqlite_schema")  # the state, from now
            pinned: Pinned = {}
            for index, shard in enumerate(shards):
                with contextlib.suppress(SqlError):
                    pinned[index] = stack.enter_context(_pinned(shard))
        yield pinned


@contextmanager
def _others_held(store: Store) -> Iterator[None]:
    """Hold the store file's write lock for the block, if it can be had within the time
    a commit waits for it (else the block runs without: the sides are read as they go)."""
    if store.path is None:  # in memory: no other process
        yield
        return
    head = FileHead(Path(store.path))
    with ExitStack() as stack:
        stack.callback(head.close)
        with contextlib.suppress(StoreError):
            stack.enter_context(head.locked())
        yield


@contextmanager
def _pinned(shard: Shard) -> Iterator[Connection]:
    """A connection to ``shard`` in a read transaction whose state is fixed from now."""
    postgres = shard.engine.dialect.name == "postgresql"
    with shard.writer.connection("reading one state for verify") as conn:
        if postgres:  # else each statement would see what was committed before it
            conn.execution_options(isolation_level="REPEATABLE READ")
        with shard.writer.translating("reading one state for verify"):
            transaction = conn.begin()
            conn.exec_driver_sql('SELECT count(*) FROM "personas"')
        try:
            yield conn
        finally:
            # It only read. A file whose damage a read met may refuse even to end it:
            # the connection is then reset as it goes back to the pool.
            with contextlib.suppress(SQLAlchemyError):
                transaction.rollback()


@contextmanager
def reading(shard: Shard, pinned: Connection | None, doing: str) -> Iterator[Connection]:
    """``pinned``, or a new connection to ``shard``; driver errors as PJai's."""
    if pinned is None:
        with shard.writer.connection(doing) as conn:
            yield conn
    else:
        with shard.writer.translating(doing):
            yield pinned
