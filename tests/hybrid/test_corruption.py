"""A damaged store file: doctor and verify see it, repair rebuilds it and says from what."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import apsw
import pytest
from typer.testing import CliRunner, Result

from pjai.cli import app
from pjai.errors import StoreCorruptError
from pjai.hybrid import HybridDatabaseManager, recovery
from pjai.hybrid.files import OFF_CLAIMED
from tests.helpers import memory, persona

runner = CliRunner()
MEMORIES = 300


def pjai(*args: str, catch_exceptions: bool = True) -> Result:
    return runner.invoke(app, list(args), catch_exceptions=catch_exceptions)


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed data directory: a persona and its memories, in store and SQL."""
    data_dir = tmp_path_factory.mktemp("healthy") / "data"
    with HybridDatabaseManager.open(data_dir, environ={}) as manager:
        manager.commit(persona("p1"))
        manager.commit(
            *[
                memory(f"m{i}", content=f"memory number {i} " + "word " * 40)
                for i in range(MEMORIES)
            ]
        )
    return data_dir


@pytest.fixture
def data_dir(healthy: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(healthy, copy)
    return copy


def pages(store: Path, name: str) -> tuple[list[int], int]:
    """The leaf pages of table or index ``name``, and the page size."""
    conn = apsw.Connection(str(store), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        found = [
            int(p)
            for (p,) in conn.execute(
                "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf'", (name,)
            )
        ]
        return found, int(conn.execute("PRAGMA page_size").get)
    finally:
        conn.close()


def scribble(store: Path, name: str) -> None:
    """Write random bytes over the cells of a leaf page in the middle of ``name``."""
    found, size = pages(store, name)
    page = found[len(found) // 2]
    noise = random.Random(page).randbytes(600)
    with store.open("r+b") as file:
        file.seek((page - 1) * size + 200)
        file.write(noise)


def names(data_dir: Path) -> set[str]:
    with HybridDatabaseManager.open(data_dir, environ={}) as manager:
        return {row.id for row in manager.query("SELECT id FROM memories")}


def assert_repaired_from(data_dir: Path, source: str) -> None:
    """``pjai repair --side store`` names ``source`` and leaves the directory whole."""
    repaired = pjai("repair", "--side", "store", "--data-dir", str(data_dir))
    assert repaired.exit_code == 0, repaired.output
    assert source in repaired.stdout
    assert_whole_again(data_dir)


def assert_whole_again(data_dir: Path) -> None:
    health = json.loads(pjai("doctor", "--json", "--data-dir", str(data_dir)).stdout)
    assert (health["status"], health["store"]["damage"]) == ("ok", [])
    assert pjai("verify", "--data-dir", str(data_dir)).exit_code == 0
    assert names(data_dir) == {f"m{i}" for i in range(MEMORIES)}
    (damaged,) = data_dir.glob("store.db.damaged-*[0-9]")
    assert damaged.stat().st_size > 0  # kept for a closer look


def test_damaged_index_pages_are_found_and_rebuilt_from_the_log(data_dir: Path) -> None:
    scribble(data_dir / "store.db", "ix_memories_health")
    doctor = pjai("doctor", "--json", "--data-dir", str(data_dir))
    assert doctor.exit_code == 2  # down: scripts and probes can tell
    health = json.loads(doctor.stdout)
    assert (health["status"], health["store"]["status"]) == ("down", "damaged")
    assert health["store"]["damage"]
    checked = pjai("verify", "--json", "--data-dir", str(data_dir))
    assert checked.exit_code == 2
    assert json.loads(checked.stdout)["store_damage"]
    assert_repaired_from(data_dir, "from its event log")


def test_a_damaged_event_log_is_rebuilt_from_sql_journal(data_dir: Path) -> None:
    scribble(data_dir / "store.db", "pjai_eventlog")
    assert pjai("verify", "--data-dir", str(data_dir)).exit_code == 2
    assert_repaired_from(data_dir, "from SQL's journal")


def test_a_store_file_that_cannot_be_opened_is_rebuilt_from_sql_journal(data_dir: Path) -> None:
    store = data_dir / "store.db"
    with store.open("r+b") as file:  # the schema page: nothing in the file can be found
        file.seek(100)
        file.write(random.Random(7).randbytes(2000))
    refused = pjai("doctor", "--data-dir", str(data_dir))
    assert refused.exit_code != 0
    assert "pjai repair --side store" in refused.output
    assert_repaired_from(data_dir, "from SQL's journal")


def test_text_that_is_not_utf8_is_reported_as_damage_never_a_raw_error(data_dir: Path) -> None:
    store = data_dir / "store.db"
    found, size = pages(store, "memories")
    raw = bytearray(store.read_bytes())
    needle = b"memory number 123 "
    at = next(
        (p - 1) * size + i for p in found if (i := raw[(p - 1) * size : p * size].find(needle)) >= 0
    )
    raw[at + 7 : at + 9] = b"\xff\xfe"
    store.write_bytes(bytes(raw))

    with HybridDatabaseManager.open(data_dir, environ={}) as manager:
        with pytest.raises(StoreCorruptError, match="not valid UTF-8"):
            manager.query("SELECT content FROM memories")
        report = manager.verify()
    (table,) = [t for t in report.tables if t.table == "memories"]
    assert table.damaged is not None
    assert [(r.key, r.columns) for r in table.unreadable] == [("m123", ["content"])]
    assert not report.equal
    shown = pjai("verify", "--data-dir", str(data_dir))
    assert shown.exit_code == 2
    assert "m123: unreadable in the store" in shown.stdout
    assert "Traceback" not in shown.output
    repaired = pjai("repair", "--side", "store", "--data-dir", str(data_dir))
    assert repaired.exit_code == 0, repaired.output
    assert pjai("verify", "--data-dir", str(data_dir)).exit_code == 0
    assert names(data_dir) == {f"m{i}" for i in range(MEMORIES)}


class Killed(BaseException):
    """The process stops here."""


def test_a_rebuild_stopped_at_the_swap_is_finished_by_the_next_open(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with HybridDatabaseManager.open(data_dir, environ={}) as manager:
        assert manager.store is not None
        store_id = manager.store.store_id
    scribble(data_dir / "store.db", "ix_memories_health")
    replace = os.replace

    def stopped(source: object, target: object) -> None:
        if Path(str(target)).name == "store.db":
            raise Killed  # the process is gone before the rebuilt file is in place
        replace(source, target)  # type: ignore[arg-type]

    monkeypatch.setattr(recovery.os, "replace", stopped)
    with pytest.raises(Killed):
        pjai("repair", "--side", "store", "--data-dir", str(data_dir), catch_exceptions=False)
    monkeypatch.undo()
    assert (data_dir / "store.db").exists()  # never a path where an open makes a new store

    with HybridDatabaseManager.open(data_dir, environ={}) as manager:
        assert manager.store is not None
        assert manager.store.store_id == store_id
    assert not (data_dir / "store.db.rebuilding").exists()
    assert_whole_again(data_dir)


def journal_ids(data_dir: Path) -> list[str]:
    conn = apsw.Connection(str(data_dir / "primary.db"), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return [str(i) for (i,) in conn.execute("SELECT event_id FROM pjai_journal ORDER BY 1")]
    finally:
        conn.close()


def test_an_event_lost_from_the_log_is_damage_and_sql_keeps_its_copy(data_dir: Path) -> None:
    conn = apsw.Connection(str(data_dir / "store.db"))
    conn.execute("DELETE FROM pjai_eventlog WHERE global_seq = 100")  # pages stay sound
    conn.close()
    journal = journal_ids(data_dir)
    doctor = pjai("doctor", "--json", "--data-dir", str(data_dir))
    assert doctor.exit_code == 2
    assert json.loads(doctor.stdout)["store"]["damage"] == [
        "the log breaks at e101: its parent e100 is not in the log"
    ]
    assert pjai("verify", "--data-dir", str(data_dir)).exit_code == 2
    refused = pjai("repair", "--side", "sql", "--data-dir", str(data_dir))
    assert refused.exit_code == 1
    assert "so SQL is not rebuilt from it: repair the store first" in refused.stderr
    assert journal_ids(data_dir) == journal  # the journal holds the only copy of e100
    assert_repaired_from(data_dir, "from SQL's journal")


def test_sql_is_not_rebuilt_from_a_log_that_lacks_an_event_of_the_journal(data_dir: Path) -> None:
    conn = apsw.Connection(str(data_dir / "store.db"))
    conn.execute("UPDATE pjai_eventlog SET event_id = 'another' WHERE global_seq = 100")
    conn.close()
    journal = journal_ids(data_dir)
    refused = pjai("repair", "--side", "sql", "--data-dir", str(data_dir))
    assert refused.exit_code == 1
    assert journal_ids(data_dir) == journal


def test_a_damaged_sql_primary_is_found_and_made_anew_from_the_store(data_dir: Path) -> None:
    primary = data_dir / "primary.db"
    scribble(primary, "memories")
    checked = pjai("verify", "--json", "--data-dir", str(data_dir))
    assert checked.exit_code == 2
    assert json.loads(checked.stdout)["sql_damage"][0].startswith(f"{primary}: ")
    repaired = pjai("repair", "--side", "sql", "--data-dir", str(data_dir))
    assert repaired.exit_code == 0, repaired.output
    assert f"damage: {primary}: " in repaired.stdout
    (damaged,) = data_dir.glob("primary.db.damaged-*[0-9]")
    assert f"The damaged file is kept as {damaged}" in repaired.stdout
    assert pjai("verify", "--data-dir", str(data_dir)).exit_code == 0
    assert names(data_dir) == {f"m{i}" for i in range(MEMORIES)}


def test_a_sql_primary_that_is_not_a_database_is_made_anew_by_repair(data_dir: Path) -> None:
    (data_dir / "primary.db").write_bytes(b"PK\x03\x04 an archive written over it" * 100)
    refused = pjai("doctor", "--data-dir", str(data_dir))
    assert refused.exit_code != 0
    repaired = pjai("repair", "--side", "sql", "--data-dir", str(data_dir))
    assert repaired.exit_code == 0, repaired.output
    assert "file is not a database" in repaired.stdout
    assert pjai("verify", "--data-dir", str(data_dir)).exit_code == 0
    assert names(data_dir) == {f"m{i}" for i in range(MEMORIES)}


def test_a_damaged_sql_primary_is_left_as_it_is_while_the_store_is_off(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    primary = data_dir / "primary.db"
    scribble(primary, "memories")
    before = primary.read_bytes()
    monkeypatch.setenv("PJAI_USE_LIVESTORE", "false")
    refused = pjai("repair", "--side", "sql", "--data-dir", str(data_dir))
    assert refused.exit_code == 1
    assert "the store, which SQL is rebuilt from, is switched off" in refused.stderr
    assert primary.read_bytes() == before
    assert not list(data_dir.glob("primary.db.damaged-*"))


def test_a_damaged_sql_primary_holding_events_the_store_lacks_is_left_as_it_is(
    data_dir: Path,
) -> None:
    with HybridDatabaseManager.open(data_dir, environ={"PJAI_USE_LIVESTORE": "false"}) as off:
        off.commit(memory("written-with-the-store-off"))  # in SQL's journal only
    primary = data_dir / "primary.db"
    scribble(primary, "memories")
    before = primary.read_bytes()
    refused = pjai("repair", "--side", "sql", "--data-dir", str(data_dir))
    assert refused.exit_code == 1
    assert "SQL's journal may hold events the store lacks" in refused.stderr
    assert "were committed with the store off" in refused.stderr
    assert primary.read_bytes() == before
    assert not list(data_dir.glob("primary.db.damaged-*"))


def test_a_damaged_sql_primary_is_left_as_it_is_after_a_store_off_commit_was_cut_off(
    tmp_path: Path,
) -> None:
    # A store-off commit's process was killed after it noted the places it took, before
    # it noted SQL's new head: SQL's journal may hold those events alone.
    data = tmp_path / "data"
    with HybridDatabaseManager.open(data, environ={}) as on:
        on.commit(persona("p1"))
        assert on.store is not None
        on.store.set_meta(OFF_CLAIMED, "2")
    beyond = recovery.sql_beyond_store(data / "store.db", [])
    assert beyond == (
        "events up to e2 may have been committed with the store off (by a process stopped "
        "before it noted they were)"
    )
