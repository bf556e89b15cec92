"""With several SQL shards and the store off, a read built with ``spread`` runs on every
shard and their rows are combined: live queries too, following commits on any shard."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pjai.errors import QueryError
from pjai.hybrid import HybridDatabaseManager, spread
from pjai.schema import PersonaActivated, memories
from tests.databases import BACKENDS, database
from tests.helpers import memory, persona
from tests.hybrid.test_shard_reads import ANN, BOB, OFF, m, p


@pytest.fixture(params=BACKENDS)
def urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[str]]:
    with ExitStack() as stack:
        yield [
            stack.enter_context(database(request.param, tmp_path / f"sql{i}", f"shard{i}"))
            for i in range(2)
        ]


@pytest.fixture
def manager(urls: list[str], tmp_path: Path) -> Iterator[HybridDatabaseManager]:
    """Ann on shard 0 with memories m1, m3 (hot) and m5; Bob on shard 1 with m2, m4 (hot); the
    store off."""
    with HybridDatabaseManager.open(tmp_path / "data", sql_urls=urls, environ=OFF) as manager:
        assert not manager.use_livestore
        assert len(manager.shards) == 2
        manager.commit(persona(ANN, name="Zoe"), persona(BOB, name="Adam"))
        manager.commit(
            memory("m1", ANN),
            memory("m3", ANN, tier="hot"),
            memory("m5", ANN),
            memory("m2", BOB),
            memory("m4", BOB, tier="hot"),
        )
        yield manager


def test_rows_of_every_shard_come_merged_in_order(manager: HybridDatabaseManager) -> None:
    by_name = spread(select(p.id, p.name), order_by=(p.name, p.id))
    assert [r.name for r in manager.query(by_name)] == ["Adam", "Zoe"]
    descending = spread(select(m.id), order_by=(m.id.desc(),))
    assert [r.id for r in manager.query(descending)] == ["m5", "m4", "m3", "m2", "m1"]


def test_limit_and_offset_apply_after_the_merge(manager: HybridDatabaseManager) -> None:
    page = spread(select(m.id, m.persona_id), order_by=(m.id,), limit=3, offset=1)
    assert [r.id for r in manager.query(page)] == ["m2", "m3", "m4"]
    assert [r.id for r in manager.live(page).result] == ["m2", "m3", "m4"]


def test_counts_of_every_shard_add_up(manager: HybridDatabaseManager) -> None:
    total = spread(select(func.count().label("n")).select_from(memories), counts_by=())
    assert [tuple(r) for r in manager.query(total)] == [(5,)]
    tiers = spread(
        select(m.tier, func.count().label("n")).group_by(m.tier),
        order_by=(m.tier,),
        counts_by=(m.tier,),
    )
    assert [(r.tier, r.n) for r in manager.query(tiers)] == [("hot", 2), ("warm", 3)]


def test_a_spread_live_query_follows_commits_on_either_shard(
    manager: HybridDatabaseManager,
) -> None:
    query = spread(select(func.count().label("n")).select_from(memories), counts_by=())
    live = manager.live(query)
    seen: list[int] = []
    live.subscribe(lambda rows: seen.append(rows[0].n))
    try:
        manager.commit(memory("m7", ANN))
        manager.commit(memory("m8", BOB))
        assert seen == [5, 6, 7]
    finally:
        live.close()


def test_a_spread_live_query_follows_other_processes_commits(
    manager: HybridDatabaseManager, urls: list[str], tmp_path: Path
) -> None:
    live = manager.live(spread(select(p.id, p.is_active), order_by=(p.id,)))
    seen: list[list[str]] = []
    live.subscribe(lambda rows: seen.append([r.id for r in rows if r.is_active]))
    try:
        with HybridDatabaseManager.open(tmp_path / "data", sql_urls=urls, environ=OFF) as other:
            other.commit(PersonaActivated(persona_id=BOB))
        assert manager.refresh()
        assert seen == [[], [BOB]]
    finally:
        live.close()


def test_what_cannot_be_combined_is_refused_in_words(manager: HybridDatabaseManager) -> None:
    average = select(func.avg(m.importance).label("mean"))
    with pytest.raises(QueryError, match="neither a key nor a count or sum"):
        spread(average, counts_by=())
    with pytest.raises(QueryError, match="not a column the read selects"):
        spread(select(m.id), order_by=(m.name,))
    with pytest.raises(QueryError, match="a live query that names no persona"):
        manager.live(select(m.id).order_by(m.id))
