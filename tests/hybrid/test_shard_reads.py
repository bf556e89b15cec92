"""With several SQL shards and the store off, a read goes where its rows are."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import case, func, or_, select

from pjai.errors import QueryError
from pjai.hybrid import HybridDatabaseManager
from pjai.memory.analytics import dashboard_query, health
from pjai.memory.graph import neighbours
from pjai.memory.optimizer import load_persona
from pjai.memory.search import SearchFilter, search
from pjai.memory.timeline import timeline
from pjai.schema import BookmarkCreated, MemoryLinked, PersonaActivated, memories, personas
from pjai.sql.shards import HashRing
from tests.databases import BACKENDS, database
from tests.helpers import memory, persona

RING = HashRing(2)
ANN = next(f"ann-{i}" for i in range(100) if RING.shard_of(f"ann-{i}") == 0)
BOB = next(f"bob-{i}" for i in range(100) if RING.shard_of(f"bob-{i}") == 1)
OFF = {"PJAI_USE_LIVESTORE": "false"}
p, m = personas.c, memories.c


@pytest.fixture(params=BACKENDS)
def manager(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HybridDatabaseManager]:
    """Ann on shard 0 and Bob on shard 1, each with linked memories; the store off."""
    with ExitStack() as stack:
        urls = [
            stack.enter_context(database(request.param, tmp_path / f"sql{i}", f"shard{i}"))
            for i in range(2)
        ]
        data = tmp_path / "data"
        with HybridDatabaseManager.open(data, sql_urls=urls, environ=OFF) as manager:
            assert not manager.use_livestore
            for who in (ANN, BOB):
                manager.commit(persona(who))
                manager.commit(
                    memory(f"{who}-garden", who, content=f"{who} planted tomatoes in the garden"),
                    memory(f"{who}-kite", who, content="a kite on the beach", tier="hot"),
                )
                manager.commit(
                    MemoryLinked(
                        persona_id=who,
                        source_id=f"{who}-garden",
                        target_id=f"{who}-kite",
                        kind="related",
                    )
                )
            manager.commit(BookmarkCreated(bookmark_id="b-bob", persona_id=BOB, name="beach"))
            manager.commit(PersonaActivated(persona_id=BOB))
            yield manager


def test_a_read_of_one_persona_runs_on_its_shard(manager: HybridDatabaseManager) -> None:
    for who in (ANN, BOB):
        found = load_persona(manager, who)
        assert found is not None
        assert health(manager, found).memories == 2
        assert sum(b.memories for b in timeline(manager, who)) == 2
        rows = manager.query(*dashboard_query("memories_by_persona", persona=who))
        assert sorted(r.id for r in rows) == [f"{who}-garden", f"{who}-kite"]
        counted = manager.query(*dashboard_query("memory_statistics", persona=who))
        assert counted[0].total == 2
    if manager.shards.shards[0].engine.dialect.name == "postgresql":
        hits = search(manager, "tomatoes", SearchFilter(persona_id=BOB))
        assert [h.memory_id for h in hits] == [f"{BOB}-garden"]


def test_a_read_whose_rows_are_on_one_shard_is_answered(
    manager: HybridDatabaseManager,
) -> None:
    assert [n.memory_id for n in neighbours(manager, f"{ANN}-garden")] == [f"{ANN}-kite"]
    assert [r.id for r in manager.query(*dashboard_query("active_persona"))] == [BOB]
    bookmark = manager.query("SELECT name FROM bookmarks WHERE id = :id", {"id": "b-bob"})
    assert [r.name for r in bookmark] == ["beach"]
    assert manager.query("SELECT id FROM memories WHERE id = :id", {"id": "nobody"}) == []


def test_a_read_with_rows_on_several_shards_is_refused(manager: HybridDatabaseManager) -> None:
    with pytest.raises(QueryError, match="this read has rows on 2 SQL shards"):
        manager.query(*dashboard_query("personas"))
    with pytest.raises(QueryError, match="rows on 2 SQL shards"):
        health(manager)  # every persona
    assert manager.personas.count() == 2  # the repositories read every shard


def test_a_live_query_of_one_persona_follows_its_commits(
    manager: HybridDatabaseManager,
) -> None:
    seen: list[int] = []
    live = manager.live(*dashboard_query("memories_by_persona", persona=ANN))
    live.subscribe(lambda rows: seen.append(len(rows)))
    try:
        manager.commit(memory(f"{ANN}-late", ANN))
        manager.commit(memory(f"{BOB}-late", BOB))
        assert seen == [2, 3]
    finally:
        live.close()


def test_a_live_query_must_name_its_persona(manager: HybridDatabaseManager) -> None:
    # Its rows could come to be spread over shards: it would stop following them.
    query = "SELECT id FROM personas WHERE id = :id OR is_active ORDER BY id"
    with pytest.raises(QueryError, match="a live query that names no persona"):
        manager.live(query, {"id": BOB})


@pytest.mark.parametrize(
    "read",
    [
        # A persona named beside other rows: those are on other shards.
        lambda: select(p.id).where(or_(p.id == BOB, p.is_active)).order_by(p.id),
        lambda: select(m.id).where(or_(m.persona_id == BOB, m.importance > 0.1)),
        lambda: select(func.count(case((m.persona_id == ANN, 1))), func.count()),
        lambda: select(m.id, select(p.name).where(p.id == BOB).scalar_subquery()),
    ],
)
def test_a_persona_named_beside_other_rows_does_not_choose_the_shard(
    manager: HybridDatabaseManager, read: Any
) -> None:
    manager.commit(PersonaActivated(persona_id=ANN))
    with pytest.raises(QueryError, match="rows on 2 SQL shards"):
        manager.query(read())


def test_sql_text_s_parameters_do_not_choose_the_shard(manager: HybridDatabaseManager) -> None:
    others = manager.query("SELECT id FROM personas WHERE id != :persona", {"persona": BOB})
    assert [r.id for r in others] == [ANN]  # on Ann's shard alone


def test_a_read_that_skips_rows_must_name_its_persona(manager: HybridDatabaseManager) -> None:
    # The shard whose rows are all skipped answers nothing, though it holds some.
    with pytest.raises(QueryError, match="skips rows"):
        manager.query(select(m.id).order_by(m.id).limit(10).offset(3))
    page = select(m.id).where(m.persona_id == ANN).order_by(m.id).limit(10).offset(1)
    assert [r.id for r in manager.query(page)] == [f"{ANN}-kite"]
