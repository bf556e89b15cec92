"""`verify` on a directory in use: one state of both sides, whatever others commit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pjai.hybrid import HybridDatabaseManager, integrity
from tests.helpers import memory, persona


def memories(manager: HybridDatabaseManager) -> list[int]:
    """The memories rows verify counted in the store."""
    return [t.store_rows for t in manager.verify().tables if t.table == "memories"]


def test_a_commit_of_another_process_during_verify_is_no_difference(
    manager: HybridDatabaseManager, data_dir: Path, sql_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process (here another manager on the same files) commits after verify
    # read the store's memories and before it reads SQL's: both sides are still read
    # as they stood before that commit.
    manager.commit(persona("p1"), memory("m1"))
    with HybridDatabaseManager.open(data_dir, sql_urls=[sql_url], environ={}) as other:
        read = integrity.rows_in_sql
        late = [memory("m2")]

        def meanwhile(*args: Any, **kwargs: Any) -> Iterator[Any]:
            if late and args[1].name == "memories":
                other.commit(late.pop())
            return read(*args, **kwargs)

        monkeypatch.setattr(integrity, "rows_in_sql", meanwhile)
        report = manager.verify()
        assert report.equal, report.to_dict()
        assert [t.store_rows for t in report.tables if t.table == "memories"] == [1]
        monkeypatch.undo()
        assert manager.verify().equal
        assert memories(manager) == [2]


def test_a_difference_is_still_named(manager: HybridDatabaseManager) -> None:
    manager.commit(persona("p1"), memory("m1"), memory("m2"))
    with manager.shards.shards[0].writer.connection("tampering", write=True) as conn:
        conn.exec_driver_sql("UPDATE memories SET importance = 0.125 WHERE id = 'm2'")
        conn.commit()
    report = manager.verify()
    assert not report.equal
    (table,) = [t for t in report.tables if t.table == "memories"]
    assert [(r.key, r.columns) for p in table.personas for r in p.rows] == [("m2", ["importance"])]
