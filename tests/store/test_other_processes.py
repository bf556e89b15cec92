"""Several connections on one store file: each sees what the others committed.

Two :class:`Store` objects on one file stand for two processes (a running sync client or
web app, and a CLI command): SQLite tells a connection when another one committed.
"""

from __future__ import annotations

import threading
from pathlib import Path

import apsw
import pytest

from pjai.errors import RebaseError
from pjai.schema import EventRecord, MemoryUpdated, Position
from pjai.store import Store
from tests.helpers import history, memory, persona, record_busy_looks


def test_a_commit_continues_after_another_connections_commits(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with Store.open(path) as running, Store.open(path) as command:
        running.commit(persona("p1"))
        command.commit(memory("m1"), memory("m2"))
        # The running store has not looked since; its next commit still follows them.
        (record,) = running.commit(memory("m3"))
        assert record.position.global_seq == 4
        assert record.parent.global_seq == 3
        assert [e.record.position.global_seq for e in running.events()] == [1, 2, 3, 4]
        assert running.query("SELECT count(*) AS n FROM memories")[0].n == 3


def test_refresh_takes_in_other_commits_and_reruns_live_queries(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with Store.open(path) as running, Store.open(path) as command:
        running.commit(persona("p1"), memory("m1"))
        live = running.live("SELECT id, importance FROM memories ORDER BY id")
        seen: list[list[tuple[str, float]]] = []
        live.subscribe(lambda rows: seen.append([(r.id, r.importance) for r in rows]))
        assert running.refresh() is False  # nothing new: one cheap look
        command.commit(MemoryUpdated(memory_id="m1", persona_id="p1", importance=0.9))
        assert running.refresh() is True
        assert running.head.global_seq == 3
        assert seen[-1] == [("m1", 0.9)]
        assert running.refresh() is False


def test_live_queries_on_the_log_hear_of_other_commits(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with Store.open(path) as running, Store.open(path) as command:
        running.commit(persona("p1"))
        live = running.live("SELECT count(*) AS n FROM pjai_eventlog")
        seen: list[int] = []
        live.subscribe(lambda rows: seen.append(rows[0].n))
        command.commit(memory("m1"), memory("m2"))
        assert running.refresh() is True
        assert seen == [1, 3]


def test_a_synced_store_sees_pending_events_another_connection_made(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with Store.open(path, sync=True) as client, Store.open(path, sync=True) as command:
        assert client.pending() == []  # the client has read its pending events once
        made = command.commit(persona("p1"), memory("m1"))
        assert [r.id for r in client.pending()] == [r.id for r in made]
        assert client.pending_count == 2
        # pending() took them in; refresh re-runs live queries for them, once.
        assert client.refresh() is True
        assert client.refresh() is False
        # Upstream events from elsewhere: the pending ones move on top of them.
        upstream = history([persona("p2")], client_id="other")
        result = client.rebase(upstream)
        assert result.confirmed == []
        assert [r.position.global_seq for r in client.pending()] == [2, 3]
        assert command.refresh() is True
        assert [r.position.global_seq for r in command.pending()] == [2, 3]


def test_live_queries_hear_of_other_commits_taken_in_by_a_write_first(tmp_path: Path) -> None:
    # The write takes the other commits in before its own: its live queries re-run for
    # them too, and so does a refresh after a read that took them in.
    path = tmp_path / "store.db"
    with Store.open(path) as running, Store.open(path) as command:
        running.commit(persona("p1"))
        live = running.live("SELECT count(*) AS n FROM personas")
        seen: list[int] = []
        live.subscribe(lambda rows: seen.append(rows[0].n))
        command.commit(persona("p2"))
        running.commit(memory("m1", "p1"))  # touches memories only
        assert seen == [1, 2]
        assert running.refresh() is False  # nothing new since
    synced = tmp_path / "synced.db"
    with Store.open(synced, sync=True) as client, Store.open(synced, sync=True) as command:
        client.commit(persona("p1"), persona("p2"))
        live = client.live("SELECT count(*) AS n FROM personas")
        seen = []
        live.subscribe(lambda rows: seen.append(rows[0].n))
        command.commit(persona("p3"))
        assert client.pending() != []  # a sync client looks all the time
        assert client.refresh() is True
        assert seen == [2, 3]


def test_events_another_connection_ingested_first_are_skipped(tmp_path: Path) -> None:
    # Two processes opening one directory both hand the store what SQL's journal holds.
    path = tmp_path / "store.db"
    journal = history([persona("p1"), memory("m1"), memory("m2")])
    with Store.open(path) as first, Store.open(path) as second:
        assert first.ingest(journal[:2]) == 2
        assert second.ingest(journal) == 1  # the first two were in already
        assert [e.record.id for e in second.events()] == [r.id for r in journal]
        other = history([persona("p9"), memory("x1", "p9")])
        with pytest.raises(RebaseError, match="this store holds another event there"):
            first.ingest(other)
        assert first.head == journal[-1].position


def test_a_commit_made_while_a_refresh_reads_the_head_is_not_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process commits between the refresh's reading of the head and of the data
    # version: the next commit must still follow that commit, not take its position.
    path = tmp_path / "store.db"
    with Store.open(path) as running, Store.open(path) as command:
        running.commit(persona("p1"))
        command.commit(memory("m1"))
        read_head = running._log.head
        interleaved: list[EventRecord] = []

        def head_then_other_commit() -> Position:
            head = read_head()
            if not interleaved:
                interleaved.extend(command.commit(memory("m2")))
            return head

        monkeypatch.setattr(running._log, "head", head_then_other_commit)
        assert running.refresh() is True
        monkeypatch.setattr(running._log, "head", read_head)
        (record,) = running.commit(memory("m3"))
        assert record.parent.global_seq == interleaved[0].position.global_seq == 3
        assert [e.record.id for e in command.events()][-2:] == [interleaved[0].id, record.id]


def test_a_commit_waiting_for_another_writer_looks_again_every_few_milliseconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite's own busy handler sleeps up to 100 ms between looks: writers committing one
    # after another could take the lock in every gap and starve a waiter for its 5 s.
    path = tmp_path / "store.db"
    looks = record_busy_looks(monkeypatch)
    with Store.open(path) as waiting:
        waiting.commit(persona("p1"))
        other = apsw.Connection(str(path))
        other.execute("BEGIN IMMEDIATE")
        committed: list[EventRecord] = []
        thread = threading.Thread(target=lambda: committed.extend(waiting.commit(memory("m1"))))
        thread.start()
        try:
            assert looks.many.wait(timeout=10)
        finally:
            other.execute("COMMIT")
            other.close()
            thread.join(timeout=10)
        assert [r.position.global_seq for r in committed] == [2]
        assert max(looks.waits) <= 0.01
