"""Spreading personas over several SQL primaries by consistent hashing.

Each shard owns 150 points on a hash ring, named after its place in the shard list;
a persona belongs to the shard owning the first point at or after the persona id's
hash, and its memories and conversations live with it. Appending a shard takes over
only the ring points it lands on, so only the personas hashing there move.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import os
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from pjai.errors import ConfigError, SqlUnavailableError
from pjai.schema.codec import ColumnCodec
from pjai.schema.event import Schema
from pjai.schema.ops import Insert, Op
from pjai.schema.records import EventRecord
from pjai.schema.render import quote
from pjai.schema.tables import persona_column
from pjai.sql import journal, migrate
from pjai.sql.engine import (
    PoolConfig,
    create_sql_engine,
    default_url,
    empty_sqlite_log,
    redacted,
)
from pjai.sql.writer import SqlWriter

__all__ = [
    "VIRTUAL_NODES",
    "HashRing",
    "Shard",
    "ShardSet",
    "data_dir_urls",
    "persona_key",
    "shard_urls",
]

VIRTUAL_NODES = 150

log = logging.getLogger(__name__)


def _point(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class HashRing:
    """Consistent hashing of keys onto ``count`` shards, 150 virtual nodes each."""

    def __init__(self, count: int, virtual_nodes: int = VIRTUAL_NODES) -> None:
        if count < 1:
            raise ConfigError("there must be at least one SQL shard")
        points = sorted(
            (_point(f"shard-{shard}#{node}"), shard)
            for shard in range(count)
            for node in range(virtual_nodes)
        )
        self._points = [p for p, _ in points]
        self._owners = [s for _, s in points]
        self.count = count

    def shard_of(self, key: str) -> int:
        """The shard index that owns ``key``."""
        if self.count == 1:
            return 0
        at = bisect.bisect_left(self._points, _point(key))
        return self._owners[at % len(self._points)]


@dataclass(frozen=True, slots=True)
class Shard:
    """One SQL primary: its place in the list, URL (password hidden) and writer."""

    index: int
    url: str
    writer: SqlWriter

    @property
    def engine(self) -> Engine:
        """The shard's SQLAlchemy engine."""
        return self.writer.engine


def shard_urls(environ: Mapping[str, str] | None = None) -> list[str] | None:
    """The shard list from ``PJAI_SQL_SHARDS`` (comma or whitespace separated), if set."""
    raw = (os.environ if environ is None else environ).get("PJAI_SQL_SHARDS", "")
    urls = [part for part in raw.replace(",", " ").split() if part]
    return urls or None


def data_dir_urls(data_dir: Path, environ: Mapping[str, str] | None = None) -> list[str]:
    """The SQL primary of a data directory: ``PJAI_SQL_SHARDS`` if set, else its own
    embedded SQLite file."""
    return shard_urls(environ) or [default_url(data_dir)]


def persona_key(op: Op) -> str | None:
    """The persona whose shard holds the rows ``op`` touches, or ``None`` for all shards."""
    columns: Mapping[str, Any] = op.values if isinstance(op, Insert) else op.where
    value = columns.get(persona_column(op.table))
    return value if isinstance(value, str) else None


class ShardSet:
    """The SQL primaries of a data directory and the ring that routes personas to them."""

    def __init__(
        self,
        urls: Sequence[str],
        schema: Schema,
        pool: PoolConfig | None = None,
        *,
        sealer: ColumnCodec | None = None,
    ) -> None:
        if not urls:
            raise ConfigError("no SQL primary configured")
        self.ring = HashRing(len(urls))
        self.tables = [
            *(t.name for t in schema.metadata.sorted_tables),
            *(t.name for t in journal.tables()),
        ]
        """Every table PJai keeps in a shard: the state and the journal."""
        self.shards = [
            Shard(i, redacted(url), SqlWriter(create_sql_engine(url, pool), schema, sealer=sealer))
            for i, url in enumerate(urls)
        ]
        self.sealer = sealer
        """Opens the sensitive columns, when the shards keep them sealed."""

    def __iter__(self) -> Iterator[Shard]:
        return iter(self.shards)

    def __len__(self) -> int:
        return len(self.shards)

    def for_persona(self, persona_id: str) -> Shard:
        """The shard that holds ``persona_id`` and its rows."""
        return self.shards[self.ring.shard_of(persona_id)]

    def route(self, op: Op) -> list[Shard]:
        """The shards ``op`` must run on."""
        key = persona_key(op)
        return [self.for_persona(key)] if key is not None else list(self.shards)

    def journal(self, after: int = 0, *, named: Collection[str] | None = None) -> list[EventRecord]:
        """Every journaled event after global position ``after``, once each (an event
        touching several shards is journaled on each), in global order; only those with
        a name in ``named``, if given."""
        with ExitStack() as stack:
            conns = [
                stack.enter_context(shard.writer.connection("reading the journal"))
                for shard in self.shards
            ]
            return journal.merged(conns, after, named=named)

    def event_at(self, global_seq: int) -> str | None:
        """The id of the event some shard journaled at ``global_seq``, if any."""
        for shard in self.shards:
            with shard.writer.connection("reading the journal") as conn:
                if (found := journal.event_at(conn, global_seq)) is not None:
                    return found
        return None

    def upgrade(self, retries_s: Sequence[float]) -> None:
        """Migrate every shard's tables to the current version, waiting ``retries_s``
        between attempts while SQL is unavailable (a server still starting)."""
        for shard in self.shards:
            for delay in (*retries_s, None):
                try:
                    with shard.writer.translating(f"migrating {shard.url}"):
                        migrate.upgrade(shard.engine)
                    break
                except SqlUnavailableError:
                    if delay is None:
                        raise
                    log.info("migrating %s: SQL unavailable, retrying in %.1f s", shard.url, delay)
                    time.sleep(delay)

    def compact(self, *, wait_s: float = 5.0) -> list[str]:
        """Rewrite every shard's files so that deleted rows leave nothing readable in
        them (SQLite: ``VACUUM``, then the write-ahead log emptied; PostgreSQL:
        ``VACUUM FULL`` of PJai's tables, which writes each anew). Returns the URLs of the shards
        that are done: an SQLite file whose log another connection still reads (waited
        for up to ``wait_s``) is left out."""
        done = []
        for shard in self.shards:
            with shard.writer.translating(f"compacting {shard.url}"):
                if shard.engine.dialect.name == "sqlite":
                    if empty_sqlite_log(shard.engine, vacuum=True, wait_s=wait_s):
                        done.append(shard.url)
                else:
                    autocommit = shard.engine.execution_options(isolation_level="AUTOCOMMIT")
                    names = ", ".join(map(quote, self.tables))
                    with autocommit.connect() as conn:
                        conn.exec_driver_sql(f"VACUUM FULL {names}")
                    done.append(shard.url)
        return done

    def dispose(self) -> None:
        """Close every pooled connection."""
        for shard in self.shards:
            shard.engine.dispose()
