"""Counting the pages a commit writes, by b-tree."""

from __future__ import annotations

from pathlib import Path

import apsw

from pjai.bench.walpages import pages_per_commit


def test_pages_are_counted_per_commit_and_named_by_their_btree(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    writer = apsw.Connection(str(path))
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); CREATE INDEX t_v ON t (v)")
    writer.execute("CREATE TABLE untouched (x)")
    rows = iter(range(10))

    def commit() -> None:
        writer.execute("INSERT INTO t (v) VALUES (?)", (f"value {next(rows)}",))

    pages = pages_per_commit(path, commit, 10)
    writer.close()
    # Each insert rewrites the table's one page and its index's one page.
    assert pages == {"t": 1.0, "t_v": 1.0}
