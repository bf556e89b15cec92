"""A write that breaks a rule of a table is named alike on every backend."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import exc as sa
from sqlalchemy import insert

from pjai.schema import SCHEMA
from pjai.schema.ops import Insert
from pjai.schema.tables import memories, personas
from pjai.sql.engine import PoolConfig
from pjai.sql.shards import ShardSet
from pjai.sql.writer import SqlWriter
from tests.databases import BACKENDS, database
from tests.helpers import persona_row

AT = datetime(2026, 1, 31, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def writer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlWriter]:
    with database(request.param, tmp_path / "sql") as url:
        shards = ShardSet([url], SCHEMA, PoolConfig())
        try:
            shards.upgrade(())
            yield shards.shards[0].writer
        finally:
            shards.dispose()


def _memory(persona_id: str = "p1", **values: Any) -> dict[str, Any]:
    return {
        "id": "m1",
        "persona_id": persona_id,
        "type": "note",
        "name": "",
        "content": "x",
        "summary": "",
        "tags": [],
        "importance": 0.5,
        "tier": "warm",
        "access_count": 0,
        "occurred_at": AT,
        "created_at": AT,
        "updated_at": AT,
        "pinned": False,
        **values,
    }


@pytest.mark.parametrize(
    ("row", "said", "field"),
    [
        (_memory("nobody"), "memories row refers to a row that does not exist", None),
        (_memory("p1", importance=7), "violates memories rule ck_memories_importance_range", None),
        (_memory("p1", content=None), "memories.content must not be NULL", "content"),
    ],
)
def test_a_broken_rule_is_named_alike(
    writer: SqlWriter, row: dict[str, Any], said: str, field: str | None
) -> None:
    with writer.engine.begin() as conn:
        conn.execute(insert(personas), [persona_row("p1", AT)])
    with pytest.raises(sa.IntegrityError) as raised, writer.engine.begin() as conn:
        conn.execute(insert(memories), [row])
    error = writer.backend.rejection(raised.value, "v1.MemoryAdded", Insert("memories", row))
    assert error is not None
    assert error.reason == said
    assert error.field == field
