"""A write that breaks a rule of a table is named alike on every backend."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert
from sqlalchemy import exc as sa

from pjai.schema.event import Context
from pjai.schema.ops import Insert
from pjai.schema.tables import memories, personas
from pjai.sql import migrate
from pjai.sql.backend import backend_for
from pjai.sql.engine import create_sql_engine
from tests.databases import BACKENDS, database
from tests.helpers import memory, persona_row

AT = datetime(2026, 1, 31, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a migrated database of each backend that holds persona p1."""
    with database(request.param, tmp_path) as url:
        engine = create_sql_engine(url)
        try:
            migrate.upgrade(engine)
            with engine.begin() as conn:
                conn.execute(insert(personas), [persona_row("p1", AT)])
            yield engine
        finally:
            engine.dispose()


def _memory_insert(persona_id: str, **values: Any) -> Insert:
    """The insert of a memory as its materializer makes it, with ``values`` changed."""
    (_check, added) = memory("m1", persona_id).materialize(Context("e1", AT))
    assert isinstance(added, Insert)
    return Insert(added.table, {**added.values, **values})


@pytest.mark.parametrize(
    ("op", "said", "field"),
    [
        (_memory_insert("nobody"), "memories row refers to a row that does not exist", None),
        (
            _memory_insert("p1", importance=7),
            "violates memories rule ck_memories_importance_range",
            None,
        ),
        (_memory_insert("p1", content=None), "memories.content must not be NULL", "content"),
    ],
)
def test_a_broken_rule_is_named_alike(
    engine: Engine, op: Insert, said: str, field: str | None
) -> None:
    with pytest.raises(sa.IntegrityError) as raised, engine.begin() as conn:
        conn.execute(insert(memories), [op.values])
    error = backend_for(engine).rejection(raised.value, "v1.MemoryAdded", op)
    assert error is not None
    assert error.reason == said
    assert error.field == field
