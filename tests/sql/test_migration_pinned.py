"""Migration 0003 adds ``memories.pinned`` to a primary holding memories and links."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, column, insert, select, table

from pjai.schema.tables import memories, memory_links, personas
from pjai.sql import create_sql_engine, migrate
from tests.databases import BACKENDS, database
from tests.helpers import persona_row

AT = datetime(2026, 1, 1, tzinfo=UTC)

PERSONA = persona_row("p1", AT)

# The memories table as revision 0002 left it: without ``pinned``.
MEMORIES_0002 = table(
    "memories", *(column(c.name, c.type) for c in memories.columns if c.name != "pinned")
)


def _memory(memory_id: str, tier: str) -> dict[str, object]:
    return {
        "id": memory_id,
        "persona_id": "p1",
        "type": "note",
        "name": "",
        "content": f"content of {memory_id}",
        "summary": "",
        "tags": ["t"],
        "importance": 0.5,
        "tier": tier,
        "access_count": 0,
        "occurred_at": AT,
        "created_at": AT,
        "updated_at": AT,
    }


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with database(request.param, tmp_path) as url:
        engine = create_sql_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


def test_existing_memories_and_links_stay_and_are_not_pinned(engine: Engine) -> None:
    migrate.upgrade(engine, "0002")
    with engine.begin() as conn:
        conn.execute(insert(personas), [PERSONA])
        conn.execute(insert(MEMORIES_0002), [_memory("a", "hot"), _memory("b", "cold")])
        conn.execute(
            insert(memory_links),
            [
                {
                    "source_id": "a",
                    "target_id": "b",
                    "kind": "related",
                    "persona_id": "p1",
                    "strength": 0.5,
                    "confidence": 1.0,
                    "decay_rate": 0.0,
                    "created_at": AT,
                    "updated_at": AT,
                }
            ],
        )
    assert migrate.upgrade(engine) == migrate.head()
    assert migrate.drift(engine) == []
    with engine.connect() as conn:
        rows = conn.execute(
            select(memories.c.id, memories.c.tier, memories.c.content, memories.c.pinned).order_by(
                memories.c.id
            )
        ).all()
        links = conn.execute(select(memory_links.c.source_id, memory_links.c.target_id)).all()
    assert [tuple(r) for r in rows] == [
        ("a", "hot", "content of a", False),
        ("b", "cold", "content of b", False),
    ]
    assert [tuple(r) for r in links] == [("a", "b")]
