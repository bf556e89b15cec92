"""A full disk, or a crash, in the middle of a checkpoint loses nothing and refuses nothing.

A checkpoint copies pages from the ``-wal`` file into the database in page order, so
page 1, with the new page count, comes first. Stopped there, the file is shorter than
its header says while SQLite still reads every page, from the ``-wal`` file.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import apsw
import pytest

from pjai.errors import StoreCorruptError, StoreError
from pjai.store import Store
from tests.helpers import memory, persona
from tests.tmpfs import FILLER, commit_until_full, tmpfs


def wal_of(path: Path) -> Path:
    return Path(f"{path}-wal")


def integrity(path: Path) -> list[tuple[str, ...]]:
    """SQLite's own verdict on a database file (and its -wal file)."""
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return [tuple(row) for row in conn.execute("PRAGMA integrity_check")]
    finally:
        conn.close()


def assert_holds(path: Path, memories: set[str], events: set[str]) -> None:
    """The store at ``path`` opens and holds exactly these memories, and these events."""
    with Store.open(path) as store:
        assert integrity(path) == [("ok",)]
        assert {row.id for row in store.query("SELECT id FROM memories")} == memories
        assert {entry.record.id for entry in store.events()} == events
        store.commit(memory("after"))  # and takes new commits
    assert integrity(path) == [("ok",)]


def test_store_filled_to_a_full_disk_reopens_with_every_acknowledged_event(
    tmp_path: Path,
) -> None:
    with tmpfs(tmp_path / "disk", "4m") as disk:
        path = disk / "data" / "store.db"
        with Store.open(path) as store:
            [created] = store.commit(persona("p1"))
            acknowledged = commit_until_full(store.commit, StoreError)
        (disk / FILLER).unlink()
        assert_holds(path, set(acknowledged), {created.id, *acknowledged.values()})


def crash_snapshot(source: Path, target: Path) -> None:
    """Copy a store file and its -wal file while a process has them open, as a crash leaves them."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    shutil.copyfile(wal_of(source), wal_of(target))


def last_page_one(wal: Path) -> bytes:
    """The newest copy of page 1 in a -wal file (32-byte header, then 24-byte frame headers)."""
    data = wal.read_bytes()
    page_size = struct.unpack(">I", data[8:12])[0]
    page_one = b""
    for offset in range(32, len(data) - page_size - 23, 24 + page_size):
        if struct.unpack(">I", data[offset : offset + 4])[0] == 1:
            page_one = data[offset + 24 : offset + 24 + page_size]
    assert page_one, "the -wal file holds no page 1"
    return page_one


@pytest.mark.parametrize("page_one", ["written", "torn"])
def test_store_whose_checkpoint_stopped_at_page_one_opens(tmp_path: Path, page_one: str) -> None:
    live, stopped = tmp_path / "live" / "store.db", tmp_path / "stopped" / "store.db"
    with Store.open(live) as store:
        records = store.commit(persona("p1"), *[memory(f"m{i}") for i in range(2_000)])
        crash_snapshot(live, stopped)
    page = last_page_one(wal_of(stopped))
    with stopped.open("r+b") as file:
        file.write(page if page_one == "written" else b"\xee" * len(page))
    memories = {f"m{i}" for i in range(2_000)}
    assert_holds(stopped, memories, {record.id for record in records})


def test_truncated_file_whose_wal_lacks_the_pages_is_refused_and_untouched(
    tmp_path: Path,
) -> None:
    live, damaged = tmp_path / "live" / "store.db", tmp_path / "damaged" / "store.db"
    with Store.open(live) as store:
        store.commit(persona("p1"), *[memory(f"m{i}") for i in range(2_000)])
    with Store.open(live) as store:  # the first commit was checkpointed on close
        store.commit(memory("late"))
        crash_snapshot(live, damaged)
    data = damaged.read_bytes()
    damaged.write_bytes(data[: len(data) // 2])
    wal = wal_of(damaged).read_bytes()
    with pytest.raises(StoreCorruptError, match="truncated") as refused:
        Store.open(damaged)
    message = str(refused.value)
    assert "store.db-wal" in message  # the advice keeps the -wal file with the database
    assert "Nothing was changed" in message
    assert damaged.read_bytes() == data[: len(data) // 2]
    assert wal_of(damaged).read_bytes() == wal


def test_empty_file_beside_a_wal_is_refused_with_advice_that_keeps_the_wal(
    store_file: Path,
) -> None:
    store_file.parent.mkdir(parents=True)
    store_file.write_bytes(b"")
    wal_of(store_file).write_bytes(b"recent commits")
    with pytest.raises(StoreCorruptError, match="empty") as refused:
        Store.open(store_file)
    assert "together with store.db-wal" in str(refused.value)
    assert wal_of(store_file).read_bytes() == b"recent commits"
