"""The bridge: projects the event log into the SQL primary, in order, exactly once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime

from pjai.errors import ConfigError, EventError, SqlError
from pjai.schema.codec import History
from pjai.schema.event import Materialized, Schema
from pjai.schema.ops import Op
from pjai.schema.records import EventRecord
from pjai.schema.types import Progress, utc_now
from pjai.sql import journal
from pjai.sql.shards import ShardSet
from pjai.sql.writer import Projection, SqlTransaction

__all__ = ["Bridge", "BridgeReport"]

Build = Callable[[int, History], Sequence[EventRecord | Materialized]]
"""Makes the events to write from the global position SQL has reached and the history
they follow there (SQL's journal)."""


@dataclass(slots=True)
class BridgeReport:
    """What the bridge has done since it started, for health reports."""

    projected: int = 0
    quarantined: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    lags_ms: list[float] = field(default_factory=list)
    """Commit time to SQL commit, per projected event (the latest few thousand)."""

    def lag(self, records: Sequence[EventRecord]) -> None:
        """Note how long ``records`` took to reach SQL."""
        now = utc_now()
        self.lags_ms.extend((now - r.at).total_seconds() * 1000 for r in records)
        del self.lags_ms[:-5_000]


class Bridge:
    """Applies events to every SQL shard with the same materializers as the store.

    Each event's ops go to the shards holding the rows they touch (by persona id; ops
    without one go to all shards); every shard journals the events it received and
    moves its checkpoint in the same transaction. Shard transactions commit together
    after all succeeded.
    """

    def __init__(self, shards: ShardSet, schema: Schema) -> None:
        self.shards = shards
        self.schema = schema
        self.report = BridgeReport()
        self._lock = threading.Lock()

    def checkpoint(self) -> int:
        """The global position every shard has reached."""
        return min(shard.writer.checkpoint() for shard in self.shards)

    def journal(self, after: int) -> list[EventRecord]:
        """SQL's journal after global position ``after``, read with every shard's
        checkpoint locked as writers lock it: a commit over several shards is seen
        whole or not at all, never on some shards only (as read shard by shard while
        it commits)."""
        with self._lock, ExitStack() as stack:
            transactions, _now = self._begin(stack, "reading the journal", lock=True)
            return journal.merged((tx.conn for tx in transactions), after)

    def _begin(
        self, stack: ExitStack, doing: str, *, lock: bool
    ) -> tuple[list[SqlTransaction], datetime]:
        """A transaction on every shard for ``doing``, ended with ``stack``, and the time
        they began; with ``lock``, each shard's checkpoint is held until they end, as
        writers hold it to commit."""
        transactions = [
            stack.enter_context(shard.writer.transaction(doing)) for shard in self.shards
        ]
        now = utc_now()
        if lock:
            for tx in transactions:
                tx.head(now, lock=True)
        return transactions, now

    def projections(self, events: Iterable[EventRecord | Materialized]) -> list[list[Projection]]:
        """Per shard, the projections of ``events`` it must apply, in order.

        A commit hands its events already materialized; a logged record is decoded and
        materialized here, and one that does not is projected with the reason.
        """
        per_shard: list[list[Projection]] = [[] for _ in self.shards.shards]
        for item in events:
            if isinstance(item, Materialized):
                record, key, ops, error = item.record, item.persona_id, item.ops, None
            else:
                record, key, ops, error = item, None, (), None
                try:
                    done = self.schema.materialize(record)
                    key, ops = done.persona_id, done.ops
                except EventError as exc:
                    error = str(exc)
                except Exception as exc:  # a materializer bug must not stop the bridge
                    error = f"event {record.name}: materializer failed: {exc!r}"
            targets: dict[int, list[Op]] = {}
            for op in ops:
                for shard in self.shards.route(op):
                    targets.setdefault(shard.index, []).append(op)
            if not targets:
                home = self.shards.for_persona(key) if key else self.shards.shards[0]
                targets[home.index] = []
            for index, shard_ops in targets.items():
                per_shard[index].append(Projection(record, key, shard_ops, error))
        return per_shard

    def project(
        self,
        records: Sequence[EventRecord] | Sequence[Materialized],
        *,
        strict: bool,
        follows: bool = False,
    ) -> set[str]:
        """Apply ``records`` to SQL; returns the tables their events wrote.

        ``strict``: raise on the first refused event and write nothing anywhere.
        Otherwise refused events are quarantined and reported. ``follows``: SQL must
        stand where the first record goes on from (its parent), else
        :class:`~pjai.errors.SqlAheadError` and nothing is written.
        """
        if not records:
            return set()
        first = records[0]
        parent = (first.record if isinstance(first, Materialized) else first).parent
        return self._write(
            lambda _head, _history: list(records),
            strict=strict,
            follows=parent.global_seq if follows else None,
        )[1]

    def append(
        self,
        build: Build,
        *,
        before_commit: Callable[[Sequence[EventRecord]], object] | None = None,
    ) -> tuple[list[EventRecord], set[str]]:
        """Commit new events straight to SQL (the store is off), all or nothing.

        ``build(head, history)`` makes the records from the global position SQL has
        reached, read under a lock on the first shard's checkpoint, so that concurrent
        writers, in this process or others, take turns and never reuse a position, and
        from the history they follow, SQL's journal (which a codec reads to seal them).
        ``before_commit(records)`` runs once SQL took them all, just before it commits.
        """
        return self._write(build, strict=True, lock=True, before_commit=before_commit)

    def _write(
        self,
        build: Build,
        *,
        strict: bool,
        lock: bool = False,
        follows: int | None = None,
        before_commit: Callable[[Sequence[EventRecord]], object] | None = None,
    ) -> tuple[list[EventRecord], set[str]]:
        quarantined = 0
        with self._lock, ExitStack() as stack:
            try:
                transactions, now = self._begin(stack, "projecting into SQL", lock=False)
                head = _level_head(transactions, now) if lock else 0
                events = build(head, journal.JournalHistory([tx.conn for tx in transactions]))
                per_shard = self.projections(events)
                records = [e.record if isinstance(e, Materialized) else e for e in events]
                last = records[-1].position.global_seq
                if follows is not None:
                    for tx in transactions:
                        tx.advance(last, now, follows=follows)
                for tx, items in zip(transactions, per_shard, strict=True):
                    if items:
                        done = tx.project(items, strict=strict)
                        quarantined += len(done.quarantined)
                        self.report.projected += done.applied
                    # Every shard has now seen the batch, whether or not any of its
                    # events touched its rows: all checkpoints mark the same position.
                    tx.advance(last, now)
                if before_commit is not None:
                    before_commit(records)
            except SqlError as exc:
                self._failed(exc)
                raise
        self.report.quarantined += quarantined
        self.report.lag(records)
        tables = {op.table for items in per_shard for item in items for op in item.ops}
        return records, tables

    def catch_up(
        self,
        events: Callable[[int], Iterable[EventRecord]],
        *,
        batch: int = 1_000,
        progress: Progress | None = None,
        total: int = 0,
    ) -> int:
        """Project the events after the lowest shard checkpoint; returns how many.

        ``events(after)`` yields the log from just after global position ``after``.
        Refused events are quarantined, not retried.
        """
        start = self.checkpoint()
        done = 0
        pending: list[EventRecord] = []
        for record in events(start):
            pending.append(record)
            if len(pending) >= batch:
                self.project(pending, strict=False)
                done += len(pending)
                pending = []
                if progress is not None:
                    progress(done, total)
        if pending:
            self.project(pending, strict=False)
            done += len(pending)
        if progress is not None and done:
            progress(done, max(total, done))
        return done

    def replace_all(
        self,
        source: Callable[[Sequence[EventRecord]], Sequence[EventRecord]],
        *,
        batch: int = 1_000,
        progress: Progress | None = None,
    ) -> Sequence[EventRecord]:
        """Empty every shard and project again the records ``source(journal)`` gives,
        in one transaction per shard; returns them.

        ``source`` is handed SQL's journal as it stands with every shard's checkpoint
        locked, as writers lock it to commit: no commit lands between that reading and
        the emptying, where it would be lost. The journal is the only history while the
        store is off, so it is emptied in the same transaction that refills it: a
        failure leaves every shard as it was.
        """
        with self._lock, ExitStack() as stack:
            try:
                transactions, now = self._begin(stack, "rebuilding SQL", lock=True)
                records = source(journal.merged(tx.conn for tx in transactions))
                for tx in transactions:
                    tx.empty(self.schema)
                for start in range(0, len(records), batch):
                    chunk = records[start : start + batch]
                    last = chunk[-1].position.global_seq
                    for tx, items in zip(transactions, self.projections(chunk), strict=True):
                        if items:
                            tx.project(items, strict=False)
                        tx.advance(last, now)
                    if progress is not None:
                        progress(start + len(chunk), len(records))
            except SqlError as exc:
                self._failed(exc)
                raise
        return records

    def _failed(self, error: BaseException) -> None:
        self.report.last_error = str(error)
        self.report.last_error_at = time.time()


def _level_head(transactions: Sequence[SqlTransaction], now: datetime) -> int:
    """The first shard's checkpoint, each shard's held until the transactions end; refused
    when the shards stand at different checkpoints. Every commit moves them all to the
    same position, so they differ only where a commit over several shards was cut off
    between their commits: SQL's journal breaks there, and a commit after it would be
    dropped with the events past the gap when SQL is repaired."""
    heads = [tx.head(now, lock=True) for tx in transactions]
    if len(set(heads)) > 1:
        places = ", ".join(f"e{head} on shard {i + 1}" for i, head in enumerate(heads))
        raise ConfigError(
            f"SQL's shards stand at different checkpoints ({places}): a commit over several "
            "shards was cut off between their commits, and SQL's journal breaks there. "
            "Commits wait until `pjai repair --side sql` has made SQL whole again (it drops "
            "that commit's events, which were never acknowledged)"
        )
    return heads[0]
