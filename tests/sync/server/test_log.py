"""The server log contract, once for every backend: memory, SQLite, PostgreSQL."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from pjai.schema.records import EventRecord, Position
from pjai.sql.engine import create_sql_engine
from pjai.sync.protocol import MAX_FRAME_BYTES, Hello, Push, PushAck, PushRejected, encode
from pjai.sync.server.log import (
    Appended,
    DuplicateEventError,
    MemoryLog,
    OverQuota,
    ServerAhead,
    ServerLog,
    record_bytes,
)
from pjai.sync.server.session import ServerSession
from pjai.sync.server.sqllog import SqlLog, cached_size
from tests.databases import database
from tests.sync.records import records


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "memory":
        yield "memory"
        return
    with database(request.param, tmp_path, "sync") as found:
        yield found


def open_log(url: str, max_store_bytes: int | None = None) -> ServerLog:
    if url == "memory":
        return MemoryLog(max_store_bytes)
    return SqlLog(create_sql_engine(url), max_store_bytes)


def close(log: ServerLog) -> None:
    if isinstance(log, SqlLog):
        log.engine.dispose()


def test_append_read_and_refuse(url: str) -> None:
    log = open_log(url)
    batch = records(5)
    assert log.head("s1") == Position(0)
    assert log.append("s1", batch[:2]) == Appended(batch[1].position, 2)
    assert log.append("s1", batch[2:]) == Appended(batch[4].position, 3)
    assert log.head("s1").key == (5, 0)
    assert log.read("s1", Position(1), 2) == batch[1:3]
    assert log.read("s1", Position(0), 100) == batch
    assert log.read("s1", Position(5), 100) == []
    again = log.append("s1", batch[2:])
    assert isinstance(again, Appended)
    assert again.count == 0  # a repeated push changes nothing
    behind = log.append("s1", records(2, "p2"))
    assert isinstance(behind, ServerAhead)
    assert behind.head.key == (5, 0)
    assert log.read("s2", Position(0), 10) == []  # stores are separate
    assert log.append("s2", records(1)) == Appended(Position(1), 1)
    close(log)


def test_an_event_id_is_logged_once(url: str) -> None:
    log = open_log(url)
    first = records(2)
    log.append("s1", first)
    # A chain from the head whose second event reuses the id of the first one logged.
    reused = [
        msgspec.structs.replace(r, position=Position(3 + i), parent=Position(2 + i))
        for i, r in enumerate(records(2, "p2"))
    ]
    reused[1] = msgspec.structs.replace(reused[1], id=first[0].id)
    with pytest.raises(DuplicateEventError, match=f"event {first[0].id} is already"):
        log.append("s1", reused)
    assert log.head("s1").key == (2, 0)  # nothing of the batch was appended
    assert log.read("s1", Position(0), 10) == first
    close(log)


def test_servers_starting_together_make_the_tables_once(url: str) -> None:
    if url == "memory":
        pytest.skip("one process's memory")
    opened: list[ServerLog] = []
    failures: list[BaseException] = []

    def start() -> None:
        try:
            opened.append(open_log(url))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len({log.backend_id for log in opened}) == 1
    for log in opened:
        close(log)


def test_sql_logs_share_a_database(url: str) -> None:
    if url == "memory":
        pytest.skip("one process's memory")
    first, second = SqlLog(create_sql_engine(url)), SqlLog(create_sql_engine(url))
    assert first.backend_id == second.backend_id
    batch = records(4)
    assert second.refresh("s1") == Position(0)
    first.append("s1", batch[:3])
    assert second.read("s1", Position(0), 10) == []  # not seen until a refresh
    assert second.refresh("s1").key == (3, 0)
    assert second.read("s1", Position(0), 10) == batch[:3]
    second.append("s1", batch[3:])
    assert first.refresh("s1").key == (4, 0)
    assert first.read("s1", Position(2), 10) == batch[2:]
    close(first)
    close(second)


def test_concurrent_pushes_from_one_parent_append_once(url: str) -> None:
    logs = [open_log(url)] if url == "memory" else [open_log(url) for _ in range(2)]
    contenders = [records(3, f"p{i}") for i in range(6)]
    results: list[Appended | ServerAhead] = []
    start = threading.Barrier(len(contenders))

    def push(i: int) -> None:
        start.wait()
        results.append(logs[i % len(logs)].append("s1", contenders[i]))

    threads = [threading.Thread(target=push, args=(i,)) for i in range(len(contenders))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(type(r).__name__ for r in results) == ["Appended"] + ["ServerAhead"] * 5
    assert logs[0].refresh("s1").key == (3, 0)
    for log in logs:
        close(log)


def test_the_backend_id_survives_a_restart(url: str) -> None:
    if url == "memory":
        pytest.skip("nothing to restart")
    first = SqlLog(create_sql_engine(url))
    first.engine.dispose()
    again = SqlLog(create_sql_engine(url))
    assert again.backend_id == first.backend_id
    again.engine.dispose()


def test_a_process_far_behind_catches_up_to_the_database_head(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if url == "memory":
        pytest.skip("one process's memory")
    monkeypatch.setattr("pjai.sync.server.sqllog.CACHED_EVENTS", 4)  # "far" is 4 events here
    reader, writer = open_log(url), open_log(url)
    assert reader.refresh("s1") == Position(0)
    batch = records(11)
    for start in range(0, 11, 3):
        writer.append("s1", batch[start : start + 3])
    assert reader.refresh("s1").key == (11, 0)  # not the first 4 only
    assert reader.read("s1", Position(0), 100) == batch
    # Its own append right after another process's leaves no hole in its cache.
    extra = records(2, "p9")
    theirs = msgspec.structs.replace(extra[0], position=Position(12), parent=Position(11))
    mine = msgspec.structs.replace(extra[1], position=Position(13), parent=Position(12))
    writer.append("s1", [theirs])
    reader.append("s1", [mine])
    assert reader.read("s1", Position(11), 10) == [theirs, mine]
    close(reader)
    close(writer)


def test_the_cache_keeps_to_its_byte_budget(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if url == "memory":
        pytest.skip("the memory log is the storage itself")
    batch = records(10)
    budget = sum(cached_size(r) for r in batch) // 2
    monkeypatch.setattr("pjai.sync.server.sqllog.CACHED_BYTES", budget)
    log = SqlLog(create_sql_engine(url))
    log.refresh("s1")
    for start in range(0, 10, 2):
        log.append("s1", batch[start : start + 2])
    recent = log._recent["s1"]
    assert 0 < len(recent.records) < len(batch)
    assert recent.size == sum(cached_size(r) for r in recent.records) <= budget
    assert log.read("s1", Position(0), 100) == batch  # older events come from the database
    log.engine.dispose()


def test_the_caches_of_all_stores_keep_to_the_process_budget(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However many stores a process watches, their cached events take at most
    CACHE_BUDGET; the store used longest ago loses its oldest events first."""
    if url == "memory":
        pytest.skip("the memory log is the storage itself")
    batch = records(6)
    whole, half = (sum(cached_size(r) for r in part) for part in (batch, batch[:3]))
    budget = 2 * whole + half
    monkeypatch.setattr("pjai.sync.server.sqllog.CACHE_BUDGET", budget)
    log = SqlLog(create_sql_engine(url))

    def cached() -> dict[str, list[EventRecord]]:
        assert log.cached_bytes == sum(r.size for r in log._recent.values()) <= budget
        return {s: log._recent[s].records for s in ("s1", "s2", "s3", "s4")}

    for store_id in ("s1", "s2", "s3", "s4"):
        log.refresh(store_id)
        log.append(store_id, batch[:3])
    assert log.read("s1", Position(1), 10) == batch[1:3]  # s1 used: s2 is the oldest used
    log.append("s4", batch[3:])
    log.append("s1", batch[3:])
    assert cached() == {"s1": batch, "s2": [], "s3": batch[:3], "s4": batch}
    log.append("s3", batch[3:])  # s4, used longest ago now, loses its oldest events
    kept = cached()["s4"]
    assert 0 < len(kept) < len(batch)
    assert kept == batch[len(batch) - len(kept) :]
    assert cached()["s3"] == cached()["s1"] == batch
    for store_id in ("s1", "s3", "s4"):  # what is not cached is read from the database
        assert log.read(store_id, Position(0), 100) == batch
    assert log.read("s2", Position(0), 100) == batch[:3]
    log.forget("s1")
    assert log.cached_bytes == sum(r.size for r in log._recent.values())
    log.engine.dispose()


def test_a_read_from_the_database_takes_a_page_of_bytes(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store of large events is read a few at a time, not up to the limit (1,000 of
    3 MiB would be 3 GiB in memory at once)."""
    if url == "memory":
        pytest.skip("the memory log is the storage itself")
    monkeypatch.setattr("pjai.sync.server.sqllog.PAGE_BYTES", 1024 * 1024)  # 8 MiB in use
    args = msgspec.Raw(b'{"text":"' + b"x" * (300 * 1024) + b'"}')
    batch = [msgspec.structs.replace(r, args=args) for r in records(12)]
    writer, reader = SqlLog(create_sql_engine(url)), SqlLog(create_sql_engine(url))
    assert reader.refresh("s1") == Position(0)
    writer.append("s1", batch)  # the writer watches no store: it caches nothing
    page = writer.read("s1", Position(0), 1_000)
    assert 0 < len(page) < len(batch)
    assert sum(len(msgspec.json.encode(r)) for r in page) <= 1024 * 1024
    read, after = list(page), page[-1].position
    while page := writer.read("s1", after, 1_000):
        read, after = read + page, page[-1].position
    assert read == batch
    # A process far behind reads the others' appends page by page up to the head.
    assert reader.refresh("s1").key == (12, 0)
    assert reader.read("s1", Position(11), 10) == batch[11:]
    writer.engine.dispose()
    reader.engine.dispose()


def test_a_forgotten_store_is_read_from_the_database(url: str) -> None:
    if url == "memory":
        pytest.skip("the memory log is the storage itself")
    log = SqlLog(create_sql_engine(url))
    batch = records(3)
    log.refresh("s1")
    log.append("s1", batch)
    log.forget("s1")
    assert "s1" not in log._recent
    assert log.read("s1", Position(0), 10) == batch
    assert log.refresh("s1").key == (3, 0)
    log.engine.dispose()


def test_cached_events_do_not_keep_the_frame_they_came_in(url: str) -> None:
    if url == "memory":
        pytest.skip("the memory log is the storage itself")
    log = SqlLog(create_sql_engine(url))
    session = ServerSession(log, None)
    session.receive(encode(Hello(versions=[1], store_id="s1", client_id="c1")))
    # One small event in a frame padded (JSON whitespace) to nearly the frame limit.
    event = records(1)
    pushed = encode(Push(id=1, events=event))
    frame = pushed[:-1] + b" " * (MAX_FRAME_BYTES - len(pushed) - 1) + b"}"
    held = sys.getrefcount(frame)
    assert isinstance(session.receive(frame)[0], PushAck)
    assert len(log._recent["s1"].records) == 1
    # The cache holds the event's arguments, not the 8 MiB they were read from.
    assert sys.getrefcount(frame) == held
    assert log.read("s1", Position(0), 10) == event
    log.engine.dispose()


def size(batch: list[EventRecord]) -> int:
    return sum(len(record_bytes(r)) for r in batch)


def test_a_store_s_log_holds_no_more_than_its_quota(url: str) -> None:
    batch = records(6)
    limit = size(batch[:4])  # room for four events to the byte
    log = open_log(url, max_store_bytes=limit)
    assert log.append("s1", batch[:3]) == Appended(batch[2].position, 3)
    assert log.append("s1", batch[3:5]) == OverQuota(size(batch[:3]), limit)
    assert log.head("s1").key == (3, 0)  # nothing of that push was appended
    assert log.read("s1", Position(0), 10) == batch[:3]
    assert log.append("s1", batch[3:4]) == Appended(batch[3].position, 1)  # just fits
    assert log.append("s1", batch[4:5]) == OverQuota(limit, limit)
    assert log.append("s2", records(4)) == Appended(Position(4), 4)  # each store its own
    again = log.append("s1", batch[3:4])  # a repeat of a push already in: still known
    assert isinstance(again, Appended)
    assert again.count == 0
    close(log)


def test_a_quota_counts_what_a_store_held_before_a_restart(url: str) -> None:
    if url == "memory":
        pytest.skip("the memory log is the storage itself")
    batch = records(4)
    log = open_log(url)
    log.append("s1", batch[:3])
    close(log)
    log = open_log(url, max_store_bytes=size(batch[:3]) + 1)
    assert log.append("s1", batch[3:]) == OverQuota(size(batch[:3]), size(batch[:3]) + 1)
    close(log)


def test_an_older_heads_table_gets_its_bytes_from_the_events_it_holds(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    batch = records(3)
    engine = create_sql_engine(url)
    with engine.begin() as conn:  # the tables as a PJai before quotas made them
        conn.exec_driver_sql(
            "CREATE TABLE pjai_sync_heads (store_id VARCHAR PRIMARY KEY, seq BIGINT NOT NULL)"
        )
        conn.exec_driver_sql(
            "CREATE TABLE pjai_sync_events (store_id VARCHAR, seq BIGINT, event_id VARCHAR "
            "NOT NULL, record BLOB NOT NULL, PRIMARY KEY (store_id, seq), "
            "UNIQUE (store_id, event_id))"
        )
        conn.exec_driver_sql("INSERT INTO pjai_sync_heads VALUES ('s1', 3), ('s2', 0)")
        for r in batch:
            conn.exec_driver_sql(
                "INSERT INTO pjai_sync_events VALUES ('s1', ?, ?, ?)",
                (r.position.global_seq, r.id, record_bytes(r)),
            )
    engine.dispose()
    log = SqlLog(create_sql_engine(url), max_store_bytes=size(batch))
    try:
        assert log.read("s1", Position(0), 10) == batch
        more = records(4)[3:]
        assert log.append("s1", more) == OverQuota(size(batch), size(batch))
        assert log.append("s2", records(1)) == Appended(Position(1), 1)
    finally:
        close(log)


def test_a_full_store_is_said_in_the_server_s_log_once_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    session = ServerSession(MemoryLog(max_store_bytes=10), None)
    session.receive(encode(Hello(versions=[1], store_id="full-store", client_id="c1")))
    for push_id in (1, 2):
        (answer,) = session.receive(encode(Push(id=push_id, events=records(1))))
        assert isinstance(answer, PushRejected)
        assert (answer.reason, answer.retry_after) == ("rate_limited", 60.0)
    said = [r.getMessage() for r in caplog.records if "is full" in r.getMessage()]
    assert said == [
        "store 'full-store' is full, its pushes wait: the store's log holds 0 bytes of events "
        "and may hold 10: this push would pass that (raise --max-store-bytes)"
    ]


def test_a_quota_past_what_sqlite_counts_is_no_quota(url: str) -> None:
    log = open_log(url, max_store_bytes=2**64)
    assert log.append("s1", records(2)) == Appended(Position(2), 2)
    close(log)
