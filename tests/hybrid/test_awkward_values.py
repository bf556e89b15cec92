"""Awkward values past validation: every backend stores them exactly or quarantines them.

Validation keeps such values out of new events (tests/schema/test_limits.py). An event
logged before the limits existed, or a materializer that computes a value, can still
hand one to a backend. The contract, for the store and for each SQL primary: the event
is either stored and reads back as written, or quarantined with a reason naming the
table; the events after it apply; nothing raises and nothing waits for ever.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import msgspec
import pytest
from sqlalchemy import select

from pjai.errors import EventValidationError
from pjai.hybrid import HybridDatabaseManager
from pjai.schema import SCHEMA, Context, EventRecord, Schema, memories
from pjai.schema.event import Event
from pjai.schema.ops import Insert, Op
from pjai.store import Store
from tests import helpers
from tests.databases import BACKENDS, database
from tests.helpers import memory, persona

AWKWARD: dict[str, dict[str, Any]] = {
    "NUL in text": {"content": "a\x00b"},
    "integer beyond 64 bits": {"access_count": 10**20},
    "integer beyond 32 bits": {"access_count": 2**40},
    "time after year 9999 in UTC": {
        "occurred_at": datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(-timedelta(hours=14)))
    },
    "time before year 1 in UTC": {
        "occurred_at": datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))
    },
    "lone surrogate": {"content": "a\ud800b"},
}
Kind = Literal[
    "NUL in text",
    "integer beyond 64 bits",
    "integer beyond 32 bits",
    "time after year 9999 in UTC",
    "time before year 1 in UTC",
    "lone surrogate",
]


class AwkwardMemoryAdded(Event, frozen=True, kw_only=True):
    """Adds a memory with one awkward column value, computed by its materializer."""

    NAME = "v1.AwkwardMemoryAdded"
    CONFLICT = "precondition"
    memory_id: str
    persona_id: str
    kind: Kind

    def materialize(self, ctx: Context) -> Sequence[Op]:
        ops = list(memory(self.memory_id, self.persona_id, content="x").materialize(ctx))
        insert = ops[-1]
        assert isinstance(insert, Insert)
        ops[-1] = Insert(insert.table, {**insert.values, **AWKWARD[self.kind]})
        return ops


WITH_AWKWARD = Schema(
    SCHEMA.metadata,
    [*SCHEMA.event_types, AwkwardMemoryAdded],
    version=SCHEMA.version,
    derived=SCHEMA.derived,
    derived_fill=SCHEMA.derived_fill,
    derived_flush=SCHEMA.derived_flush,
)


def confirmed(events: Sequence[Event]) -> list[EventRecord]:
    """``events`` as another instance's confirmed history, from position 1."""
    return helpers.history(events, schema=WITH_AWKWARD, client_id="other")


def history(kind: str) -> list[EventRecord]:
    return confirmed(
        [
            persona("p1"),
            AwkwardMemoryAdded(memory_id="m1", persona_id="p1", kind=kind),  # type: ignore[arg-type]
            memory("m2"),
        ]
    )


def written(kind: str) -> tuple[str, Any]:
    ((column, value),) = AWKWARD[kind].items()
    return column, value


@pytest.mark.parametrize("kind", list(AWKWARD))
def test_the_store_stores_exactly_or_quarantines(kind: str) -> None:
    records = history(kind)
    with Store.memory(schema=WITH_AWKWARD, sync=True) as store:
        result = store.rebase(records)
        assert result.applied == 3
        assert store.confirmed_head.global_seq == 3
        column, value = written(kind)
        rows = store.query(f"SELECT id, {column} AS v FROM memories ORDER BY id")
        quarantined = store.quarantined()
        if [r.id for r in rows] == ["m1", "m2"]:
            assert rows[0].v == value
            assert quarantined == []
        else:
            assert [r.id for r in rows] == ["m2"]
            assert [e.record.id for e in quarantined] == [records[1].id]
            assert quarantined[0].error is not None
            assert "memories" in quarantined[0].error
        before = store.state_hash()
        store.rebuild()  # a replay decides the same way
        assert store.state_hash() == before
        assert [e.record.id for e in store.quarantined()] == [e.record.id for e in quarantined]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def synced(backend: str, tmp_path: Path) -> Iterator[HybridDatabaseManager]:
    with (
        database(backend, tmp_path / "sql") as url,
        HybridDatabaseManager.open(
            tmp_path / "data",
            sql_urls=[url],
            schema=WITH_AWKWARD,
            environ={"PJAI_FLAG_SYNC": "true"},
        ) as manager,
    ):
        yield manager


@pytest.mark.parametrize("kind", list(AWKWARD))
def test_each_sql_primary_stores_exactly_or_quarantines(
    synced: HybridDatabaseManager, kind: str
) -> None:
    records = history(kind)
    assert synced.store is not None
    synced.store.rebase(records)  # the bridge projects confirmed events right after
    assert synced.bridge.checkpoint() == 3
    assert synced.memories.get("m2") is not None
    (shard,) = synced.shards
    column, value = written(kind)
    with shard.writer.connection("reading") as conn:
        found = conn.execute(
            select(memories.c[column]).where(memories.c.id == "m1")
        ).scalar_one_or_none()
    report = synced.quarantine()
    in_sql = [q for q in report.events if "sql" in q.sides]
    if found is not None:
        assert found == value
        assert in_sql == []
    else:
        assert [q.event_id for q in in_sql] == [records[1].id]
        assert "memories" in in_sql[0].reason
        assert synced.health().status == "degraded"
        synced.acknowledge_quarantine()
        assert synced.health().status == "ok"


def test_arguments_that_are_not_utf8_are_refused_before_anything_is_written(
    synced: HybridDatabaseManager,
) -> None:
    records = confirmed([persona("p1"), memory("m1")])
    bad = msgspec.structs.replace(
        records[1], args=msgspec.Raw(bytes(records[1].args).replace(b"content", b"\xffcontent"))
    )
    store = synced.store
    assert store is not None
    with pytest.raises(EventValidationError, match="not valid UTF-8"):
        store.rebase([records[0], bad])
    assert store.confirmed_head.global_seq == 0
    assert synced.bridge.checkpoint() == 0
    with pytest.raises(EventValidationError, match="not valid UTF-8"):
        synced.bridge.project([records[0], bad], strict=False)
    assert synced.bridge.checkpoint() == 0
    store.rebase(records)  # the same history, whole, goes through
    assert synced.bridge.checkpoint() == 2


def test_a_count_saturates_at_its_column_limit_on_every_backend(
    synced: HybridDatabaseManager,
) -> None:
    from pjai.schema import MemoryAccessed
    from pjai.schema.limits import INT32_MAX

    records = confirmed(
        [
            persona("p1"),
            memory("m1"),
            MemoryAccessed(memory_id="m1", persona_id="p1", count=INT32_MAX),
            MemoryAccessed(memory_id="m1", persona_id="p1", count=INT32_MAX),
        ]
    )
    assert synced.store is not None
    synced.store.rebase(records)
    assert synced.store.query("SELECT access_count FROM memories")[0].access_count == INT32_MAX
    found = synced.memories.get("m1")
    assert found is not None
    assert found.access_count == INT32_MAX
    assert synced.quarantine().events == []
    assert synced.verify().equal


def test_times_reach_sql_in_utc(synced: HybridDatabaseManager) -> None:
    zone = timezone(timedelta(hours=-14))
    when = datetime(9999, 12, 30, 9, 59, tzinfo=zone)  # 23:59 UTC, the last day allowed
    records = confirmed([persona("p1"), memory("m1", occurred_at=when)])
    assert synced.store is not None
    synced.store.rebase(records)
    found = synced.memories.get("m1")
    assert found is not None
    assert found.occurred_at == when.astimezone(UTC)
    assert synced.verify().equal


def test_text_that_is_not_unicode_is_refused_by_reads_with_a_clear_error(
    synced: HybridDatabaseManager,
) -> None:
    from pjai.errors import QueryError
    from pjai.memory import MemorySystem

    lone = "a\ud800"
    reads = [
        lambda: synced.query("SELECT ? AS x", [lone]),
        lambda: synced.memories.get(lone),
        lambda: synced.personas.list(name_contains=lone),
        lambda: MemorySystem(synced).open(lone),
    ]
    for read in reads:
        with pytest.raises(QueryError, match="not valid Unicode text"):
            read()
    with pytest.raises(EventValidationError, match="lone surrogate"):
        synced.commit(persona(lone))
