"""A batch projected into SQL answers as if its events were applied one by one.

The writer sends a batch in few statements (runs of inserts as one, a repeated
existence check asked once); these tests pin that nothing of the one-by-one meaning
is lost: a check after a delete is asked again, and a refused event is named.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from pjai.schema import SCHEMA, PersonaDeleted
from pjai.schema.event import Event
from pjai.schema.tables import memories
from pjai.sql.engine import PoolConfig
from pjai.sql.shards import ShardSet
from pjai.sql.writer import SqlWriter
from tests.databases import BACKENDS, database
from tests.helpers import memory, persona, projections


@pytest.fixture(params=BACKENDS)
def writer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlWriter]:
    with database(request.param, tmp_path / "sql") as url:
        shards = ShardSet([url], SCHEMA, PoolConfig())
        try:
            shards.upgrade(())
            yield shards.shards[0].writer
        finally:
            shards.dispose()


def _ids(writer: SqlWriter) -> list[tuple[str, str]]:
    with writer.engine.connect() as conn:
        return sorted(conn.execute(select(memories.c.id, memories.c.persona_id)).all())


def test_a_check_after_a_delete_is_asked_again(writer: SqlWriter) -> None:
    events: list[Event] = [
        persona("p1"),
        persona("p2"),
        memory("m1"),
        memory("m2", "p2"),
        memory("m3"),  # p1 checked again: answered by the first check
        PersonaDeleted(persona_id="p1"),
        memory("m4"),  # p1 is gone: its check must not take the earlier answer
        memory("m5", "p2"),
    ]
    items = projections(events)
    with writer.transaction() as tx:
        done = tx.project(items, strict=False)
    assert done.applied == len(events) - 1
    ((record, reason),) = done.quarantined
    assert record.id == items[6].record.id
    assert reason.endswith("persona 'p1' does not exist or is deleted")
    assert [m for m, _ in _ids(writer)] == ["m1", "m2", "m3", "m5"]


@pytest.mark.parametrize("run", [5, 100])  # 100: a bulk run (COPY on PostgreSQL)
def test_a_refused_insert_in_a_run_of_inserts_is_named(writer: SqlWriter, run: int) -> None:
    made = [memory(f"m{i:03}", tags=["x"], importance=0.5) for i in range(run)]
    events: list[Event] = [persona("p1"), *made, memory("m002"), memory("m999")]
    items = projections(events)
    with writer.transaction() as tx:
        done = tx.project(items, strict=False)
    assert done.applied == len(events) - 1
    ((record, reason),) = done.quarantined
    assert record.id == items[run + 1].record.id
    assert "'m002'" in reason
    assert [m for m, _ in _ids(writer)] == [*(f"m{i:03}" for i in range(run)), "m999"]


@pytest.mark.parametrize("run", [5, 100])
def test_rows_written_in_a_run_read_back_as_written_one_by_one(writer: SqlWriter, run: int) -> None:
    made = [memory(f"m{i:03}", tags=["a", "b"], importance=i / run) for i in range(run)]
    with writer.transaction() as tx:
        tx.project(projections([persona("p1"), *made]), strict=True)
    with writer.engine.connect() as conn:
        rows = conn.execute(select(memories).order_by(memories.c.id)).all()
    assert [(r.id, r.tags, r.importance, r.tier) for r in rows] == [
        (f"m{i:03}", ["a", "b"], i / run, "warm") for i in range(run)
    ]
    assert all(r.created_at.tzinfo is not None and r.content.startswith("content of") for r in rows)


def test_a_strict_batch_names_the_first_refused_event_and_writes_nothing(
    writer: SqlWriter,
) -> None:
    items = projections([persona("p1"), memory("m1"), memory("m2", "nobody"), memory("m3")])
    with pytest.raises(Exception, match="persona") as raised, writer.transaction() as tx:
        tx.project(items, strict=True)
    assert "MemoryAdded" in str(raised.value)
    assert _ids(writer) == []
