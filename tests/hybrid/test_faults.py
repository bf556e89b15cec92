"""Faults: SQL outages mid-stream, kill -9 around the dual write, concurrent writers."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import apsw
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from pjai.errors import ConfigError, SqlAheadError, SqlSchemaMissingError, SqlUnavailableError
from pjai.hybrid import HybridDatabaseManager
from pjai.hybrid import manager as manager_module
from pjai.hybrid import projector as projector_module
from pjai.hybrid.projector import Projector
from pjai.schema import EventRecord, MemoryAccessed
from pjai.sql import journal
from pjai.sql.engine import PoolConfig
from pjai.store.log import EventLog
from tests.databases import postgres_schema
from tests.helpers import history, memory, persona
from tests.proxy import TcpProxy

FAST_FAIL = PoolConfig(timeout_s=0.3)


@contextlib.contextmanager
def quick_to_give_up(tmp_path: Path) -> Iterator[HybridDatabaseManager]:
    """A manager on the SQLite primary ``primary.db`` in ``tmp_path`` that gives up on
    SQL's lock within 0.3 s, holding persona p1."""
    url = f"sqlite:///{tmp_path / 'primary.db'}"
    with HybridDatabaseManager.open(
        tmp_path / "data", sql_urls=[url], pool=FAST_FAIL, environ={}
    ) as manager:
        manager.commit(persona("p1"))
        yield manager


@contextlib.contextmanager
def sql_locked(path: Path) -> Iterator[sqlite3.Connection]:
    """The SQLite primary at ``path`` locked by another connection until the block ends;
    what the connection did is rolled back unless it committed."""
    blocker = sqlite3.connect(path, isolation_level=None, timeout=30)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        yield blocker
    finally:
        if blocker.in_transaction:
            blocker.execute("ROLLBACK")
        blocker.close()


def commit_stream(manager: HybridDatabaseManager, start: int, count: int) -> None:
    for i in range(start, start + count, 10):
        manager.commit(*[memory(f"m{j}") for j in range(i, i + 10)])


def test_sqlite_primary_locked_mid_stream_loses_nothing(tmp_path: Path) -> None:
    with quick_to_give_up(tmp_path) as manager:
        commit_stream(manager, 0, 100)
        with sql_locked(tmp_path / "primary.db"):
            commit_stream(manager, 100, 100)  # SQL cannot take these: the store does
            health = manager.health()
            assert health.status in {"degraded", "down"}
            assert manager.last_error is not None
        manager.catch_up()
        assert manager.memories.count() == 200
        assert manager.health().bridge.lag_events == 0
        assert manager.verify().equal


@pytest.fixture
def proxied_postgres() -> Iterator[tuple[str, TcpProxy]]:
    with postgres_schema() as url:
        parsed = make_url(url)
        proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
        try:
            yield parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(False), proxy
        finally:
            proxy.cut()


def test_postgres_outage_mid_stream_loses_nothing(
    tmp_path: Path, proxied_postgres: tuple[str, TcpProxy]
) -> None:
    url, proxy = proxied_postgres
    with HybridDatabaseManager.open(
        tmp_path / "data", sql_urls=[url], pool=FAST_FAIL, environ={}
    ) as manager:
        manager.commit(persona("p1"))
        commit_stream(manager, 0, 100)
        proxy.cut()
        commit_stream(manager, 100, 100)
        assert manager.store is not None
        assert manager.store.head.global_seq == 201
        assert manager.health().status == "down"
        proxy.resume()
        manager.catch_up()
        assert manager.memories.count() == 200
        assert manager.verify().equal


WRITER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from pjai.hybrid import HybridDatabaseManager
    from pjai.schema import MemoryAdded, PersonaCreated
    from pjai.sql.engine import PoolConfig

    data, url, mode = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    manager = HybridDatabaseManager.open(
        data, sql_urls=[url], environ={}, pool=PoolConfig(timeout_s=0.5)
    )
    manager.commit(PersonaCreated(persona_id="p1", name="Ada"))
    for i in range(50):
        manager.commit(MemoryAdded(memory_id=f"m{i}", persona_id="p1", content="x"))
    print("ready", flush=True)
    if mode == "after-sql":
        # Die after SQL committed and before the store does.
        manager.store.add_commit_hook(lambda records: os.kill(os.getpid(), signal.SIGKILL))
    sys.stdin.readline()
    manager.commit(MemoryAdded(memory_id="last", persona_id="p1", content="x"))
    print("committed", flush=True)
    sys.stdin.readline()
    """
)


@pytest.mark.parametrize("mode", ["after-sql", "after-store"])
def test_kill_around_the_dual_write(tmp_path: Path, mode: str) -> None:
    data, db = tmp_path / "data", tmp_path / "primary.db"
    url = f"sqlite:///{db}"
    with subprocess.Popen(
        [sys.executable, "-c", WRITER, str(data), url, mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as writer:
        assert writer.stdin is not None
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "ready"
        blocker = None
        if mode == "after-store":
            # SQL is locked: the store commits, SQL does not get the event.
            blocker = sqlite3.connect(db, isolation_level=None, timeout=30)
            blocker.execute("BEGIN EXCLUSIVE")
        writer.stdin.write("go\n")
        writer.stdin.flush()
        line = writer.stdout.readline().strip()
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=30)
        if blocker is not None:
            blocker.execute("ROLLBACK")
            blocker.close()
    assert line == ("" if mode == "after-sql" else "committed")
    with HybridDatabaseManager.open(data, sql_urls=[url], environ={}) as manager:
        assert manager.store is not None
        assert manager.store.head.global_seq == 52
        assert manager.memories.get("last") is not None
        assert manager.verify().equal


def test_concurrent_writers_on_postgres(tmp_path: Path) -> None:
    with postgres_schema() as url:
        with HybridDatabaseManager.open(tmp_path / "a", sql_urls=[url], environ={}) as manager:
            manager.commit(persona("p1"))
            errors: list[BaseException] = []

            def write(worker: int) -> None:
                try:
                    for i in range(20):
                        manager.commit(*[memory(f"w{worker}-{i}-{k}") for k in range(5)])
                except BaseException as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=write, args=(w,)) for w in range(6)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert errors == []
            assert manager.memories.count() == 600
            assert manager.verify().equal
        # With the store off, two managers write SQL directly at the same time.
        env = {"PJAI_USE_LIVESTORE": "false"}
        first = HybridDatabaseManager.open(tmp_path / "b", sql_urls=[url], environ=env)
        second = HybridDatabaseManager.open(tmp_path / "c", sql_urls=[url], environ=env)
        try:
            done: list[list[int]] = [[], []]

            def direct(index: int, target: HybridDatabaseManager) -> None:
                for i in range(30):
                    records = target.commit(memory(f"d{index}-{i}"))
                    done[index].append(records[0].position.global_seq)

            threads = [
                threading.Thread(target=direct, args=(i, m)) for i, m in enumerate((first, second))
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            positions = sorted(done[0] + done[1])
            assert positions == list(range(positions[0], positions[0] + 60))
            assert first.memories.count() == 660
        finally:
            first.close()
            second.close()
        with HybridDatabaseManager.open(tmp_path / "a", sql_urls=[url], environ={}) as manager:
            assert manager.store is not None
            assert manager.store.head.global_seq == positions[-1]
            assert manager.verify().equal


def test_refused_catch_up_events_are_quarantined_not_retried(tmp_path: Path) -> None:
    with quick_to_give_up(tmp_path) as manager:
        with sql_locked(tmp_path / "primary.db") as blocker:
            manager.commit(memory("m1"))  # the store has it, SQL does not
            manager.commit(memory("m2"))
            # Someone writes m1 into SQL behind PJai's back: SQL will refuse the real m1.
            blocker.execute(
                "INSERT INTO memories (id, persona_id, type, name, content, summary, tags,"
                " importance, tier, access_count, occurred_at, created_at, updated_at) VALUES"
                " ('m1', 'p1', 'note', '', 'intruder', '', '[]', 0.5, 'warm', 0,"
                " '2020-01-01T00:00:00.000000+00:00', '2020-01-01T00:00:00.000000+00:00',"
                " '2020-01-01T00:00:00.000000+00:00')"
            )
            blocker.execute("COMMIT")
        manager.catch_up()
        health = manager.health()
        assert health.status == "degraded"
        assert [q.name for q in health.quarantine.events] == ["v1.MemoryAdded"]
        assert health.quarantine.events[0].sides == ("sql",)
        assert "a memory with id 'm1' exists" in health.quarantine.events[0].reason
        assert health.shards[0].quarantined == 1
        assert manager.memories.get("m2") is not None  # later events went on
        assert manager.catch_up() == 0  # not retried
        report = manager.verify()
        assert not report.equal
        # Acknowledged, the alarm stops and the record stays.
        assert manager.acknowledge_quarantine().sql == 1
        health = manager.health()
        assert not health.quarantine.alarm
        assert health.quarantine.reviewed_through == 2
        assert health.shards[0].quarantined == 1
        assert health.status == "ok"
        manager.repair("sql")
        assert manager.verify().equal
        assert manager.health().status == "ok"


def test_store_failing_after_sql_committed_takes_the_events_from_the_journal(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'primary.db'}"
    with HybridDatabaseManager.open(tmp_path / "data", sql_urls=[url], environ={}) as manager:
        manager.commit(persona("p1"))
        assert manager.store is not None
        failures = [RuntimeError("disk trouble at commit")]

        def fail_once(records: object) -> None:
            if failures:
                raise failures.pop()

        manager.store.add_commit_hook(fail_once)  # runs after the projection into SQL
        records = manager.commit(memory("m1"))
        assert [r.name for r in records] == ["v1.MemoryAdded"]
        assert manager.store.head.global_seq == 2
        assert manager.memories.get("m1") is not None
        manager.commit(memory("m2"))
        assert manager.verify().equal


def test_a_store_off_writer_never_takes_places_the_store_holds_for_sql(tmp_path: Path) -> None:
    # A command with the store off is open; a running process's commit stays in the
    # store while SQL is locked, and that process stops before catching SQL up. The
    # command must not write another event at that place.
    url = f"sqlite:///{tmp_path / 'primary.db'}"
    off = {"PJAI_USE_LIVESTORE": "false"}
    running = HybridDatabaseManager.open(
        tmp_path / "data", sql_urls=[url], pool=FAST_FAIL, environ={}
    )
    running.commit(persona("p1"))
    with HybridDatabaseManager.open(tmp_path / "data", sql_urls=[url], environ=off) as command:
        with sql_locked(tmp_path / "primary.db"):
            (held,) = running.commit(memory("in-the-store"))
            running.close()
        with pytest.raises(ConfigError, match="the store file holds events up to e2 that SQL"):
            command.commit(memory("with-the-store-off"))
        with HybridDatabaseManager.open(tmp_path / "data", sql_urls=[url], environ={}) as again:
            assert again.verify().equal  # opening with the store on caught SQL up
        (record,) = command.commit(memory("with-the-store-off"))
    assert record.position.global_seq == held.position.global_seq + 1


def test_a_store_off_commit_refuses_an_sql_primary_without_the_last_store_off_commits(
    tmp_path: Path,
) -> None:
    # The store file takes a store-off commit in only at the next open. A command run
    # with PJAI_SQL_SHARDS naming another database (or after SQL was restored from an
    # older backup) found SQL without it, and committed in its place: the event it
    # acknowledged was then in a database PJai no longer read.
    data = tmp_path / "data"
    first = f"sqlite:///{tmp_path / 'first.db'}"
    other = f"sqlite:///{tmp_path / 'other.db'}"
    off = {"PJAI_USE_LIVESTORE": "false"}
    with HybridDatabaseManager.open(data, sql_urls=[first], environ={}) as on:
        on.commit(persona("p1"))
    with HybridDatabaseManager.open(data, sql_urls=[first], environ=off) as store_off:
        store_off.commit(memory("in-the-first"))
    with HybridDatabaseManager.open(data, sql_urls=[other], environ=off) as elsewhere:
        with pytest.raises(ConfigError, match="reached e2 in SQL, but SQL's journal ends at e1"):
            elsewhere.commit(memory("in-its-place"))
        assert elsewhere.memories.get("in-its-place") is None
    with HybridDatabaseManager.open(data, sql_urls=[first], environ=off) as again:
        (record,) = again.commit(memory("after-it"))  # the right database: as before
        assert record.position.global_seq == 3
    with HybridDatabaseManager.open(data, sql_urls=[first], environ={}) as on:
        assert {row[0] for row in on.query("SELECT id FROM memories")} == {
            "in-the-first",
            "after-it",
        }
        assert on.verify().equal


def test_histories_that_went_apart_are_said_not_hidden(tmp_path: Path) -> None:
    # Had another event taken the store's place in SQL, catching up would skip it.
    with quick_to_give_up(tmp_path) as running:
        with sql_locked(tmp_path / "primary.db"):
            running.commit(memory("in-the-store"))
        # Another event at e2 in SQL, as a store-off writer of an older PJai left it.
        other = history([persona("p1"), memory("elsewhere")])[1]
        running.bridge.project([other], strict=False)
        with pytest.raises(SqlAheadError, match=f"holds event {other.id} at e2, where"):
            running.catch_up()
        assert not running.verify().equal  # and verify says so too


def test_a_store_off_commit_holds_the_store_file_while_it_writes_sql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A store-on commit takes the store file's lock, then SQL's. A store-off commit
    # that held SQL's lock alone let a store-on process, tired of waiting for SQL, keep
    # its commit in the store at the very position the store-off commit then took.
    url = f"sqlite:///{tmp_path / 'primary.db'}"
    with HybridDatabaseManager.open(tmp_path / "data", sql_urls=[url], environ={}) as running:
        running.commit(persona("p1"))
    off = {"PJAI_USE_LIVESTORE": "false"}
    seen: list[str] = []
    with HybridDatabaseManager.open(tmp_path / "data", sql_urls=[url], environ=off) as command:
        append = command.bridge.append

        def probing(build: object, **options: Any) -> object:
            # The store's own SQLite library: another copy would not see the lock.
            probe = apsw.Connection(str(tmp_path / "data" / "store.db"))
            try:
                probe.execute("BEGIN IMMEDIATE")
                seen.append("free")
            except apsw.BusyError:
                seen.append("locked")
            finally:
                probe.close()
            return append(build, **options)  # type: ignore[arg-type]

        monkeypatch.setattr(command.bridge, "append", probing)
        command.commit(memory("with-the-store-off"))
    assert seen == ["locked"]
    with HybridDatabaseManager.open(tmp_path / "data", sql_urls=[url], environ={}) as again:
        again.commit(memory("with-the-store-on"))
        assert again.verify().equal


def test_a_synced_directory_opens_while_its_sync_client_confirms_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sync client (another process) confirms events into the store and projects
    # them into SQL just as a command opens the directory: SQL ahead of the store as
    # the command first read it is no other history.
    synced = {"PJAI_FLAG_SYNC": "true"}
    upstream = history([persona("p1"), memory("m1"), memory("m2")], client_id="other")
    client = HybridDatabaseManager.open(tmp_path / "data", environ=synced)
    assert client.store is not None
    client.store.rebase(upstream[:1])
    journal_head = Projector.journal_head
    confirmed: list[int] = []

    def meanwhile(self: Projector) -> int:
        if not confirmed and self.store is not client.store:  # the command, opening
            assert client.store is not None
            client.store.rebase(upstream[1:])
            client.catch_up()
            confirmed.append(len(upstream))
        return journal_head(self)

    monkeypatch.setattr(Projector, "journal_head", meanwhile)
    try:
        with HybridDatabaseManager.open(tmp_path / "data", environ=synced) as command:
            assert command.store is not None
            assert command.store.confirmed_head.global_seq == 3
    finally:
        client.close()
    assert confirmed == [3]


@pytest.fixture
def away(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str, TcpProxy]]:
    """A PostgreSQL schema's URL, and a URL of it through a proxy that is not listening
    yet (``resume()`` lets it answer); SQL is retried at once."""
    monkeypatch.setattr(manager_module, "RETRY_DELAYS_S", (0.01,))
    with postgres_schema() as real:
        parsed = make_url(real)
        proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432, started=False)
        try:
            yield real, parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(False), proxy
        finally:
            proxy.cut()


def test_a_directory_opens_while_postgresql_is_away_and_sql_catches_up_later(
    tmp_path: Path, away: tuple[str, str, TcpProxy]
) -> None:
    # Offline first: a new process does not need SQL to take commits. SQL is migrated,
    # its shards' places checked and the commits projected once it answers.
    _, url, proxy = away
    with HybridDatabaseManager.open(
        tmp_path / "data", sql_urls=[url], pool=FAST_FAIL, environ={}
    ) as manager:
        manager.commit(persona("p1"))
        commit_stream(manager, 0, 20)
        assert manager.last_error is not None
        assert manager.health().status == "down"
        proxy.resume()  # PostgreSQL answers now
        manager.catch_up()
        assert manager.last_error is None
        assert manager.memories.count() == 20
        assert manager.verify().equal


def test_a_store_switched_on_while_sql_is_away_does_not_take_the_places_of_store_off_commits(
    tmp_path: Path, away: tuple[str, str, TcpProxy]
) -> None:
    # A commit made with the store off is in SQL only. A process that switches the store
    # on while SQL is away must not commit in its place: the two histories would split,
    # and neither side could take the other's events in again.
    real, away_url, proxy = away
    data = tmp_path / "data"
    with HybridDatabaseManager.open(data, sql_urls=[real], environ={}) as on:
        on.commit(persona("p1"))
    off = {"PJAI_USE_LIVESTORE": "false"}
    with HybridDatabaseManager.open(data, sql_urls=[real], environ=off) as store_off:
        store_off.commit(memory("with-the-store-off"))
    with HybridDatabaseManager.open(data, sql_urls=[away_url], pool=FAST_FAIL, environ={}) as on:
        with pytest.raises(ConfigError, match="up to e2 committed with the store off"):
            on.commit(memory("in-its-place"))
        assert on.store is not None
        assert on.store.head.global_seq == 1  # nothing was written
        proxy.resume()  # SQL answers: its events come first
        on.commit(memory("after-it"))
        ids = {row[0] for row in on.query("SELECT id FROM memories")}
        assert ids == {"with-the-store-off", "after-it"}
        assert on.verify().equal


def test_a_store_file_made_while_sql_is_away_waits_for_the_history_only_sql_holds(
    tmp_path: Path, away: tuple[str, str, TcpProxy]
) -> None:
    # Used with the store off from the start, the directory has no store file to note
    # SQL's head in. The store file made later, while SQL is away, knows nothing of it.
    real, away_url, proxy = away
    data = tmp_path / "data"
    off = {"PJAI_USE_LIVESTORE": "false"}
    with HybridDatabaseManager.open(data, sql_urls=[real], environ=off) as store_off:
        store_off.commit(persona("p1"), memory("with-the-store-off"))
    assert not (data / "store.db").exists()
    with HybridDatabaseManager.open(data, sql_urls=[away_url], pool=FAST_FAIL, environ={}) as on:
        with pytest.raises(ConfigError, match="this store file is new in a data directory"):
            on.commit(persona("p2"))  # in the place of the store-off commit
        assert on.store is not None
        assert on.store.head.global_seq == 0  # nothing was written
    with HybridDatabaseManager.open(data, sql_urls=[away_url], pool=FAST_FAIL, environ={}) as on:
        with pytest.raises(ConfigError, match="this store file is new"):  # nor by another
            on.commit(persona("p2"))
        proxy.resume()  # SQL answers: its events come first
        on.commit(memory("after-it"))
        ids = {row[0] for row in on.query("SELECT id FROM memories")}
        assert ids == {"with-the-store-off", "after-it"}
        assert on.verify().equal
    proxy.cut()
    with HybridDatabaseManager.open(data, sql_urls=[away_url], pool=FAST_FAIL, environ={}) as on:
        on.commit(memory("offline-again"))  # the history seen, commits wait for SQL no more


def test_a_postgresql_database_made_again_empty_is_away_until_restored_or_reopened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Restoring PostgreSQL (drop, create, restore) passes through an empty database: the
    # store goes on committing and PJai makes no table there (the restore would fail on
    # it); opened again, PJai sets it up anew and fills it.
    monkeypatch.setattr(manager_module, "RETRY_DELAYS_S", (0.01,))
    data = tmp_path / "data"
    with postgres_schema() as url:
        schema = make_url(url).query["options"].removeprefix("-csearch_path=")
        admin = create_engine(make_url(url).difference_update_query(["options"]))
        tables = f"SELECT count(*) FROM pg_tables WHERE schemaname = '{schema}'"
        try:
            with HybridDatabaseManager.open(data, sql_urls=[url], environ={}) as on:
                on.commit(persona("p1"), memory("before"))
                with admin.begin() as conn:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                    conn.execute(text(f'CREATE SCHEMA "{schema}"'))
                on.commit(memory("while-empty"))  # the store takes it
                assert "has no PJai tables" in (on.last_error or "")
                with pytest.raises(SqlSchemaMissingError, match="restore it"):
                    on.catch_up()
                with admin.connect() as conn:
                    assert conn.execute(text(tables)).scalar() == 0
            with HybridDatabaseManager.open(data, sql_urls=[url], environ={}) as again:
                again.commit(memory("after"))
                assert again.memories.count() == 3
                assert again.verify().equal
        finally:
            admin.dispose()


def test_a_store_switched_on_in_the_process_that_committed_with_it_off_waits_for_sql(
    tmp_path: Path, away: tuple[str, str, TcpProxy]
) -> None:
    # A new directory, used with the store off by this very process: its store file,
    # made when the store is switched on while SQL is away, has not seen SQL's history.
    _, away_url, proxy = away
    data = tmp_path / "data"
    data.mkdir()
    (data / "flags.json").write_text('{"use_livestore": false}')
    proxy.resume()
    with HybridDatabaseManager.open(data, sql_urls=[away_url], pool=FAST_FAIL, environ={}) as m:
        m.commit(persona("p1"), memory("with-the-store-off"))
        proxy.cut()
        m.set_flag("use_livestore", True)
        with pytest.raises(ConfigError, match="this store file is new"):
            m.commit(persona("p2"))  # in the place of the store-off commit
        proxy.resume()
        m.commit(persona("p2"))  # after SQL's history
        assert m.verify().equal


def test_a_store_off_commit_whose_note_cannot_be_written_still_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # SQL took the commit: a failure to note its head in the store file afterwards is
    # no failure of the commit (a retry would commit it twice).
    data = tmp_path / "data"
    with HybridDatabaseManager.open(data, environ={}) as on:
        on.commit(persona("p1"))
    with HybridDatabaseManager.open(data, environ={"PJAI_USE_LIVESTORE": "false"}) as off:

        def full(self: EventLog, **values: str) -> None:
            raise apsw.FullError("database or disk is full")

        monkeypatch.setattr(EventLog, "set_meta", full)
        (record,) = off.commit(memory("m1"))
        assert record.position.global_seq == 2
        assert "could not note" in caplog.text
    monkeypatch.undo()
    with HybridDatabaseManager.open(data, environ={}) as again:
        assert {row[0] for row in again.query("SELECT id FROM memories")} == {"m1"}


def test_a_store_off_commit_during_a_repair_of_sql_is_not_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process commits with the store off once `pjai repair --side sql` (also
    # with the store off) has read SQL's journal: the commit must either wait for the
    # repair (here, it gives up) or be in SQL after it.
    url = f"sqlite:///{tmp_path / 'primary.db'}"
    off = {"PJAI_USE_LIVESTORE": "false"}
    with (
        HybridDatabaseManager.open(tmp_path / "data", sql_urls=[url], environ=off) as repairing,
        HybridDatabaseManager.open(
            tmp_path / "data", sql_urls=[url], pool=FAST_FAIL, environ=off
        ) as other,
    ):
        other.commit(persona("p1"), memory("m1"))
        committed: list[str] = []
        chain = projector_module.whole_start

        def whole_start(records: Sequence[EventRecord]) -> list[EventRecord]:
            committed.append("tried")
            with contextlib.suppress(SqlUnavailableError):
                other.commit(memory("during-repair"))
                committed.append("during-repair")
            return chain(records)

        monkeypatch.setattr(projector_module, "whole_start", whole_start)
        repairing.repair("sql")
        monkeypatch.undo()
        assert committed[0] == "tried"
        if "during-repair" in committed:
            assert other.memories.get("during-repair") is not None
        assert repairing.head() == (3 if "during-repair" in committed else 2)


def test_a_store_off_commit_during_a_repair_of_sql_from_the_store_is_not_lost(
    tmp_path: Path, sql_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The repair brought the store up to SQL and reads the store's log; a store-off
    # commit of another process lands in SQL meanwhile. Rebuilding SQL from the log
    # would drop it: the repair is refused instead, and the next one takes it in.
    url = sql_url
    with (
        HybridDatabaseManager.open(tmp_path / "data", sql_urls=[url], environ={}) as repairing,
        HybridDatabaseManager.open(
            tmp_path / "data", sql_urls=[url], environ={"PJAI_USE_LIVESTORE": "false"}
        ) as other,
    ):
        repairing.commit(persona("p1"), memory("m1"))
        store = repairing.store
        assert store is not None
        reading = store.events

        def events(*args: Any, **kwargs: Any) -> Any:
            monkeypatch.undo()
            other.commit(memory("during-repair"))
            return reading(*args, **kwargs)

        monkeypatch.setattr(store, "events", events)
        with pytest.raises(ConfigError, match=r"SQL took 1 event\(s\) from e3 on"):
            repairing.repair("sql")
        assert other.memories.get("during-repair") is not None
        assert repairing.repair("sql").events == 3
        assert repairing.memories.get("during-repair") is not None
        assert repairing.verify().equal


def test_an_event_another_process_projected_meanwhile_is_not_quarantined(
    manager: HybridDatabaseManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two processes catching SQL up at once (on PostgreSQL both may look before either
    # commits): the second finds the events journaled when it writes them. They stand
    # applied, once; the catch-up neither fails nor quarantines them.
    manager.commit(persona("p1"), memory("m1"))
    manager.commit(MemoryAccessed(memory_id="m1", persona_id="p1", count=3))
    store = manager.store
    assert store is not None
    logged = [entry.record for entry in store.events()]
    monkeypatch.setattr(journal, "applied_ids", lambda _conn, _ids: set())  # looked before
    manager.bridge.project(logged, strict=False)
    monkeypatch.undo()
    assert manager.quarantine().sql == 0
    memory_row = manager.memories.get("m1")
    assert memory_row is not None
    assert memory_row.access_count == 3
    assert manager.verify().equal


def test_a_switch_that_could_not_reach_sql_happens_once_sql_answers(tmp_path: Path) -> None:
    # Another process turned the store off; this one could not follow at its next
    # commit (SQL locked). It must follow once SQL answers, not keep the store for good.
    url = f"sqlite:///{tmp_path / 'primary.db'}"
    with quick_to_give_up(tmp_path) as running:
        with HybridDatabaseManager.open(tmp_path / "data", sql_urls=[url], environ={}) as other:
            other.set_flag("use_livestore", False)
        with (
            sql_locked(tmp_path / "primary.db"),
            pytest.raises(SqlUnavailableError, match="cannot switch the reactive store off"),
        ):
            running.commit(memory("m1"))
        running.commit(memory("m1"))
        assert not running.use_livestore
        assert running.memories.get("m1") is not None


def sql_back_to_a_backup(manager: HybridDatabaseManager, sql_url: str) -> None:
    """Commit events up to e4 (memories m1 to m3), then put SQL back as restoring a
    backup taken after e2 would."""
    manager.commit(persona("p1"), memory("m1"))
    manager.commit(memory("m2"))
    manager.commit(memory("m3"))
    engine = create_engine(sql_url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM memories WHERE id IN ('m2', 'm3')"))
        conn.execute(text("DELETE FROM pjai_journal WHERE global_seq > 2"))
        conn.execute(text("UPDATE pjai_checkpoint SET global_seq = 2 WHERE projection = 'primary'"))
    engine.dispose()


def test_sql_restored_from_a_backup_while_a_process_was_idle_gets_no_gap(
    tmp_path: Path, sql_url: str
) -> None:
    # SQL goes back to a backup taken after e2 while a process with the store on sits
    # idle; its next commit must not be written after a gap where e3 and e4 were.
    with HybridDatabaseManager.open(tmp_path / "data", sql_urls=[sql_url], environ={}) as manager:
        sql_back_to_a_backup(manager, sql_url)
        manager.commit(memory("m4"))
        assert [e.position.global_seq for e in manager.shards.journal()] == [1, 2, 3, 4, 5]
        assert manager.memories.count() == 4
        assert manager.verify().equal


def test_a_store_off_commit_after_sql_went_back_to_a_backup_leaves_no_gap(
    tmp_path: Path, sql_url: str
) -> None:
    # A directory used with the store off (no store file to note SQL's head): SQL is
    # restored from a backup taken after e2 while a process runs. Its next commit must
    # go on from e2: placed after a gap, a repair would drop it as a cut-off commit's.
    off = {"PJAI_USE_LIVESTORE": "false"}
    with HybridDatabaseManager.open(tmp_path / "data", sql_urls=[sql_url], environ=off) as manager:
        sql_back_to_a_backup(manager, sql_url)
        (record,) = manager.commit(memory("m4"))
        assert record.position.global_seq == 3
        manager.repair("sql")
        assert manager.memories.get("m4") is not None
