"""Commits with the store switched off, and how a store-on process keeps clear of them.

With ``use_livestore`` off a process commits straight to SQL and journals each event
(:func:`commit_store_off`), noting SQL's head in the store file as it goes
(:data:`OFF_CLAIMED` before SQL commits, :data:`OFF_HEAD` after). A process with the
store on reads those notes: its commit takes such commits in first
(:func:`store_off_commits`), and it refuses to commit in their places while SQL is
away (:func:`refuse_unseen_history`) or to catch SQL up over a history that went
another way (:func:`check_one_history`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from pjai.errors import ConfigError, SqlAheadError, SqlUnavailableError
from pjai.hybrid.bridge import Bridge
from pjai.hybrid.files import OFF_CLAIMED, OFF_HEAD
from pjai.hybrid.gaps import unbroken
from pjai.schema.codec import History
from pjai.schema.event import Event, Materialized, Schema
from pjai.schema.records import EventRecord, Position, session_of, stamp
from pjai.schema.types import utc_now
from pjai.sql import journal
from pjai.sql.shards import ShardSet
from pjai.store import Store
from pjai.store.filehead import FileHead, LockedFile

__all__ = [
    "check_one_history",
    "commit_store_off",
    "refuse_unseen_history",
    "store_off_commits",
    "store_off_head",
]


def commit_store_off(
    bridge: Bridge,
    schema: Schema,
    events: Sequence[Event],
    store_file: FileHead,
    *,
    client_id: str,
    session_id: str,
) -> tuple[list[EventRecord], set[str]]:
    """Commit ``events`` straight to SQL, journalled; returns the records and the
    tables they wrote. The store file's write lock is held meanwhile, as a store-on
    commit holds it (store first, then SQL); refused while the file holds events SQL
    lacks: they would take the same places."""
    encoded = [schema.encode(event) for event in events]
    at = utc_now()

    def build(global_seq: int, history: History, file: LockedFile) -> list[Materialized]:
        # SQL's checkpoint, read under its lock, not what this process last saw: SQL
        # may have gone back (restored from a backup), and events placed after a
        # gap would be dropped as a cut-off commit's by the next repair.
        after = global_seq
        if file.head > after:
            raise ConfigError(
                f"the store file holds events up to e{file.head} that SQL lacks (it has "
                f"e{after}): a process with the store on committed them while SQL was "
                "unavailable. Commit with the store on, which brings SQL up to it, or "
                "wait until that process has"
            )
        noted = int(file.meta.get(OFF_HEAD) or 0)
        if noted > global_seq:
            # Those events are in another database, or nowhere: a commit here would
            # take their places, and they could never be taken in again.
            raise ConfigError(
                f"commits made with the store off reached e{noted} in SQL, but SQL's "
                f"journal ends at e{global_seq}: PJAI_SQL_SHARDS names another database "
                "than they went to, or SQL was restored from an older backup. Point "
                "PJAI_SQL_SHARDS at the database they went to; if they are lost, switch "
                "the store on (pjai flags set use_livestore true), which commits after "
                "the history it holds"
            )
        records = stamp(
            ((name, args) for name, _, args in encoded),
            after=Position(after),
            generation=0,
            client_id=client_id,
            session_id=session_of(session_id),
            at=at,
            codec=schema.codec,
            history=history,  # SQL's journal, as a store's commit follows its log
        )
        return [
            schema.materialize(record, payload)
            for record, (_, payload, _) in zip(records, encoded, strict=True)
        ]

    records: list[EventRecord] = []

    def claim(taken: Sequence[EventRecord]) -> None:
        # A store-on process that cannot reach SQL learns from the file that SQL's
        # history goes on past its own: it may not commit in those places. Noted
        # before SQL commits, so that a process killed between the two commits
        # leaves the note all the same. SQL's head as read under its lock is
        # committed history: the head after the last commit made with the store off,
        # as far as is known for sure.
        store_file.note_now(
            **{
                OFF_HEAD: str(taken[0].parent.global_seq),
                OFF_CLAIMED: str(taken[-1].position.global_seq),
            }
        )

    def note(meta: dict[str, str]) -> dict[str, str]:
        # Once SQL committed. Another commit's note may be there first (where another
        # writer took the lock at the claim), and this one's head is then not the last.
        head = max(records[-1].position.global_seq, int(meta.get(OFF_HEAD) or 0))
        return {OFF_HEAD: str(head)}

    with store_file.locked(note) as file:
        records, tables = bridge.append(partial(build, file=file), before_commit=claim)
    return records, tables | {journal.journal.name}


def store_off_commits(bridge: Bridge, store: Store, head: Position) -> list[EventRecord]:
    """SQL's events after ``head`` that store-off commits wrote, which ``store`` takes
    in before its commit (:meth:`Store.commit`'s ``first``). Called under the store
    file's write lock, which a store-off commit holds until it has noted its head in
    the file (or at least its places, just before SQL commits them:
    :func:`commit_store_off`): SQL's journal is read with its checkpoints locked as such
    a commit holds them, so none can go in between, and a commit never loses its place
    to one, however busy its writer."""
    if store_off_head(store) <= head.global_seq:
        return []
    try:
        missing = bridge.journal(head.global_seq)
    except SqlUnavailableError:
        return []  # the commit hook then refuses the commit, saying why
    return unbroken(missing, head)


def refuse_unseen_history(store: Store, parent: int, error: BaseException, *, unseen: bool) -> None:
    """With SQL away, refuse a commit after ``parent`` when commits made with the
    store off went past it (the store file says so), or may have (``unseen``: a file
    new in a directory used before, :data:`~pjai.hybrid.files.UNSEEN`): it would take
    their places."""
    if unseen:
        raise ConfigError(
            "this store file is new in a data directory used before, and SQL's "
            "journal, which may hold events committed with the store off, has not "
            f"been read yet; it is read when SQL answers (now: {error}). Commit again "
            "then"
        ) from error
    off_head = store_off_head(store)
    if off_head > parent:
        raise ConfigError(
            f"SQL's journal holds (or may hold) events up to e{off_head} committed with "
            "the store off, which this store has not taken in; it takes them in when "
            f"SQL answers (now: {error}). Commit again then"
        ) from error


def check_one_history(shards: ShardSet, store: Store, position: int) -> None:
    """Refuse to catch SQL up from ``position`` (its checkpoint) when SQL's journal
    holds another event there than the store: the two histories went apart, and
    projecting the store's later events would hide it."""
    if position == 0:
        return
    ours = next(iter(store.events(after=Position(position - 1))), None)
    theirs = shards.event_at(position)
    if ours is None or theirs is None or ours.record.id == theirs:
        return
    raise SqlAheadError(
        f"SQL's journal holds event {theirs} at e{position}, where the store holds "
        f"{ours.record.id}: another process committed to SQL with the store switched "
        "off while this store's commits had not reached SQL. The two histories differ "
        "from there on (`pjai verify` compares them); SQL is not caught up past it"
    )


def store_off_head(store: Store) -> int:
    """How far SQL may hold commits made with the store off, as the store file heard."""
    return max(int(store.meta(key) or 0) for key in (OFF_HEAD, OFF_CLAIMED))
