"""Opening store files: reopen, rebuild on schema change, refuse damaged files."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import apsw
import pytest

from pjai.errors import StoreCorruptError, StoreError
from pjai.schema import SCHEMA, Schema
from pjai.store import Store
from pjai.store.log import EventLog
from tests.helpers import memory, persona


def filled(path: Path, memories: int = 200) -> str:
    with Store.open(path) as store:
        store.commit(persona("p1"), *[memory(f"m{i}") for i in range(memories)])
        return store.state_hash()


def test_reopen_keeps_state_without_rebuilding(store_file: Path) -> None:
    state = filled(store_file)
    reports: list[tuple[int, int]] = []
    with Store.open(
        store_file, progress=lambda done, total: reports.append((done, total))
    ) as store:
        assert store.state_hash() == state
        assert reports == []
        assert store.summary()["events"] == 201


def test_changed_schema_rebuilds_state_from_the_log(store_file: Path) -> None:
    state = filled(store_file)
    newer = Schema(SCHEMA.metadata, SCHEMA.event_types, version=2)
    reports: list[tuple[int, int]] = []
    with Store.open(
        store_file, schema=newer, progress=lambda d, t: reports.append((d, t))
    ) as store:
        assert store.state_hash() == state
        assert reports[-1] == (201, 201)
    reports.clear()
    with Store.open(store_file, schema=newer, progress=lambda d, t: reports.append((d, t))):
        assert reports == []  # rebuilt once, then opened as is


def test_rebuild_reproduces_the_state(store_file: Path) -> None:
    state = filled(store_file)
    with Store.open(store_file) as store:
        assert store.rebuild() == 201
        assert store.state_hash() == state


def test_empty_file_is_refused(store_file: Path) -> None:
    store_file.parent.mkdir(parents=True)
    store_file.write_bytes(b"")
    with pytest.raises(StoreCorruptError, match=r"empty.*`pjai repair --side store`"):
        Store.open(store_file)
    assert store_file.read_bytes() == b""


def test_a_store_file_made_in_several_processes_at_once_is_one(tmp_path: Path) -> None:
    path = tmp_path / "data" / "store.db"
    opening = "import sys\nfrom pjai.store import Store\nprint(Store.open(sys.argv[1]).store_id)"
    openers = [
        subprocess.Popen([sys.executable, "-c", opening, str(path)], stdout=subprocess.PIPE)
        for _ in range(6)
    ]
    said = [
        (opener.communicate(timeout=60)[0].decode().strip(), opener.returncode)
        for opener in openers
    ]
    assert len({store_id for store_id, _ in said}) == 1
    assert {code for _, code in said} == {0}
    # Nothing half-made: only the store file and SQLite's own WAL files, which a process
    # exiting while another still reads may leave for the next opening to take up.
    left = {p.name for p in path.parent.iterdir()} - {"store.db-wal", "store.db-shm"}
    assert left == {"store.db"}
    store = Store.open(path)
    assert store.store_id == said[0][0]
    store.close()


def test_a_store_file_whose_making_fails_is_not_left_half_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "data" / "store.db"

    def full(self: object) -> None:
        raise apsw.FullError("database or disk is full")

    monkeypatch.setattr(EventLog, "create", full)
    with pytest.raises(StoreError, match="full"):
        Store.open(path)
    assert list(path.parent.iterdir()) == []
    monkeypatch.undo()
    with Store.open(path) as store:
        assert store.head.global_seq == 0


def test_garbage_file_is_refused_and_untouched(store_file: Path) -> None:
    store_file.parent.mkdir(parents=True)
    garbage = bytes(range(256)) * 64
    store_file.write_bytes(garbage)
    with pytest.raises(StoreCorruptError, match="not an SQLite database"):
        Store.open(store_file)
    assert store_file.read_bytes() == garbage


def test_truncated_file_is_refused_and_untouched(store_file: Path) -> None:
    filled(store_file, 2_000)
    data = store_file.read_bytes()
    store_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreCorruptError, match="truncated"):
        Store.open(store_file)
    assert store_file.read_bytes() == data[: len(data) // 2]


def test_corrupt_pages_give_a_clear_error(store_file: Path) -> None:
    filled(store_file, 2_000)
    data = bytearray(store_file.read_bytes())
    page = 4096
    for offset in range(2 * page, len(data), page):  # every page after the schema
        data[offset : offset + 64] = b"\xff" * 64
    store_file.write_bytes(bytes(data))

    def read_everything() -> None:
        with Store.open(store_file) as store:
            store.query("SELECT * FROM memories")
            store.query("SELECT * FROM pjai_eventlog")

    with pytest.raises(StoreCorruptError, match="corrupt"):
        read_everything()
    assert store_file.read_bytes() == bytes(data)


def test_other_sqlite_database_is_refused_and_untouched(store_file: Path) -> None:
    store_file.parent.mkdir(parents=True)
    with sqlite3.connect(store_file) as other:
        other.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY)")
    other.close()
    before = store_file.read_bytes()
    with pytest.raises(StoreCorruptError, match="not a PJai store"):
        Store.open(store_file)
    assert store_file.read_bytes() == before


def test_store_from_another_format_is_refused(store_file: Path) -> None:
    filled(store_file, 1)
    with sqlite3.connect(store_file) as db:
        db.execute("UPDATE pjai_meta SET value = '99' WHERE key = 'format'")
    db.close()
    with pytest.raises(StoreError, match="format '99'"):
        Store.open(store_file)


def test_a_rebuild_that_finds_a_recorded_outcome_wrong_decides_every_event_again(
    store_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.helpers import history

    records = history([persona("p1"), memory("m1"), memory("orphan", "p2"), memory("m2")])
    with Store.open(store_file) as store:
        assert store.ingest(records) == 3  # the orphan's persona does not exist
        state = store.state_hash()
        assert store.rebuild() == 3
        assert store.state_hash() == state
    assert "deciding each event again" not in caplog.text
    # A log that says the orphan applied (as a damaged or hand-edited one might):
    # trusted, it would leave a memory without its persona.
    with sqlite3.connect(store_file) as raw:
        raw.execute("UPDATE pjai_eventlog SET error = NULL WHERE event_id = ?", [records[2].id])
    with Store.open(store_file) as store:
        assert store.rebuild() == 3
        assert "deciding each event again" in caplog.text
        assert store.state_hash() == state
        assert store.quarantined()[0].record.id == records[2].id


def test_a_check_aside_reads_the_file_while_the_store_is_held(store_file: Path) -> None:
    with Store.open(store_file) as store:
        store.commit(persona("p1"), memory("m1"))
        found: list[list[str]] = []
        with store.exclusive():  # as verify holds it
            checker = threading.Thread(target=lambda: found.append(store.check(aside=True)))
            checker.start()
            checker.join(timeout=30)
        assert found == [[]]
    with Store.memory() as in_memory, pytest.raises(ValueError, match="no file"):
        in_memory.check(aside=True)


def test_a_read_of_the_log_by_name_is_found_by_an_index(store_file: Path) -> None:
    # The erasures are read each time a directory opens: not by reading every event. A
    # file made before the index (dropped here) gets it when opened.
    filled(store_file)
    with sqlite3.connect(store_file) as db:
        db.execute("DROP INDEX IF EXISTS pjai_eventlog_name")
    Store.open(store_file).close()
    conn = apsw.Connection(str(store_file))
    try:
        statements: list[tuple[str, object]] = []

        def seen(_cursor: apsw.Cursor, statement: str, bindings: object) -> bool:
            statements.append((statement, bindings))
            return True

        conn.exec_trace = seen
        found = list(EventLog(conn).entries(named=["v1.PersonaCreated"]))
        conn.exec_trace = None
        assert [entry.record.name for entry in found] == ["v1.PersonaCreated"]
        ((statement, bindings),) = statements
        plan = conn.execute(f"EXPLAIN QUERY PLAN {statement}", bindings).fetchall()
        assert "USING INDEX pjai_eventlog_name" in str(plan)
    finally:
        conn.close()
