"""The hybrid manager's contract, on every SQL backend."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pjai.errors import MaterializationError
from pjai.hybrid import HybridDatabaseManager
from pjai.schema import MemoryAccessed, MemoryDeleted, MemoryUpdated, PersonaActivated
from pjai.sql.repositories import MemoryFilter
from tests.helpers import memory, persona


def test_commit_lands_on_both_sides(manager: HybridDatabaseManager) -> None:
    records = manager.commit(
        persona("p1"), memory("m1", tier="hot", importance=0.9, tags=["a", "b"])
    )
    assert manager.store is not None
    assert manager.store.query("SELECT count(*) AS n FROM memories")[0].n == 1
    got = manager.memories.get("m1")
    assert got is not None
    assert (got.tier, got.importance, got.tags) == ("hot", 0.9, ["a", "b"])
    assert got.created_at == records[1].at
    assert manager.verify().equal
    health = manager.health()
    assert health.status == "ok", health
    assert health.bridge.lag_events == 0
    assert health.shards[0].checkpoint == 2
    assert health.shards[0].journal_events == 2


def test_sql_refusal_rolls_the_commit_back(manager: HybridDatabaseManager) -> None:
    """An event the store accepts but SQL refuses leaves neither side changed."""
    manager.commit(persona("p1"), memory("m1"))
    # Put SQL out of step on purpose: delete m1 there only.
    shard = manager.shards.shards[0]
    with shard.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM memories WHERE id = 'm1'")
    head = manager.head()
    with pytest.raises(MaterializationError, match="no live memory 'm1'"):
        manager.commit(MemoryUpdated(memory_id="m1", persona_id="p1", content="x"))
    assert manager.head() == head
    assert manager.store is not None
    assert manager.store.query("SELECT content FROM memories")[0].content == "content of m1"


def test_repositories_filter_count_and_summarise(manager: HybridDatabaseManager) -> None:
    manager.commit(persona("p1"), persona("p2"))
    manager.commit(
        *[
            memory(
                f"a{i}",
                "p1",
                importance=i / 10,
                tier="hot" if i < 3 else "cold",
                tags=["t"] if i % 2 else [],
            )
            for i in range(10)
        ],
        *[memory(f"b{i}", "p2", type="fact") for i in range(4)],
    )
    manager.commit(
        MemoryDeleted(memory_id="a9", persona_id="p1"),
        MemoryAccessed(memory_id="a1", persona_id="p1", count=6),
    )
    memories = manager.memories
    assert memories.count() == 13
    assert memories.count(MemoryFilter(persona_id="p1")) == 9
    assert memories.count(MemoryFilter(include_deleted=True)) == 14
    assert [m.id for m in memories.list(MemoryFilter(persona_id="p1", tiers=["hot"]))] == [
        "a2",
        "a1",
        "a0",
    ]
    assert [m.id for m in memories.list(MemoryFilter(tags=["t"]), order="importance", limit=2)] == [
        "a7",
        "a5",
    ]
    assert memories.count(MemoryFilter(importance_min=0.5, importance_max=0.8)) == 8  # b* are 0.5
    assert memories.count(MemoryFilter(types=["fact"])) == 4
    stats = memories.statistics(MemoryFilter(persona_id="p1"))
    assert (stats.total, stats.deleted, stats.by_tier["hot"], stats.by_tier["cold"]) == (9, 1, 3, 6)
    assert (stats.frequently_accessed, stats.accessed_last_24h, stats.high_importance) == (1, 1, 1)
    assert manager.personas.count() == 2
    manager.commit(PersonaActivated(persona_id="p2"))
    active = manager.personas.active()
    assert active is not None
    assert active.id == "p2"


def test_time_ranges_on_occurred_and_created(manager: HybridDatabaseManager) -> None:
    from datetime import UTC, datetime, timedelta

    old = datetime(2020, 1, 1, tzinfo=UTC)
    manager.commit(persona("p1"), memory("old", occurred_at=old), memory("new"))
    assert [
        m.id for m in manager.memories.list(MemoryFilter(occurred_to=old + timedelta(days=1)))
    ] == ["old"]
    now = datetime.now(UTC)
    assert manager.memories.count(MemoryFilter(created_from=now - timedelta(hours=1))) == 2
    assert manager.memories.count(MemoryFilter(created_to=old)) == 0


def test_store_off_commits_go_to_sql_and_catch_up_later(manager: HybridDatabaseManager) -> None:
    """Switch off, commit 1,000 events, switch on: both sides hold the same data."""
    manager.commit(persona("p1"))
    manager.set_flag("use_livestore", False)
    assert manager.store is None
    counts: list[int] = []
    live = manager.live("SELECT count(*) AS n FROM memories")
    live.subscribe(lambda rows: counts.append(rows[0].n))
    for start in range(0, 1_000, 100):
        manager.commit(*[memory(f"m{i}") for i in range(start, start + 100)])
    assert counts[0] == 0
    assert counts[-1] == 1_000
    assert len(counts) == 11
    assert manager.memories.count() == 1_000
    manager.set_flag("use_livestore", True)
    assert manager.store is not None
    assert manager.store.head.global_seq == 1_001
    assert manager.store.query("SELECT count(*) AS n FROM memories")[0].n == 1_000
    assert manager.verify().equal
    manager.commit(memory("after"))
    assert manager.verify().equal


def test_the_log_and_the_journal_read_only_the_events_of_the_names_asked(
    manager: HybridDatabaseManager,
) -> None:
    manager.commit(persona("p1"), persona("p2"), *[memory(f"m{i}") for i in range(5)])
    manager.commit(PersonaActivated(persona_id="p2"), memory("m9", "p2"))
    store = manager.store
    assert store is not None
    every = [e.record for e in store.events()]
    for names in ({"v1.PersonaCreated"}, {"v1.PersonaCreated", "v1.PersonaActivated"}, set()):
        wanted = [r.id for r in every if r.name in names]
        assert [e.record.id for e in store.events(named=names)] == wanted
        assert [r.id for r in manager.shards.journal(named=names)] == wanted
    after = every[1].position
    assert [e.record.id for e in store.events(after=after, named={"v1.PersonaCreated"})] == []
    assert manager.shards.journal(after=after.global_seq, named={"v1.PersonaCreated"}) == []


def test_reopen_continues_where_it_left(data_dir: Path, sql_url: str) -> None:
    with HybridDatabaseManager.open(data_dir, sql_urls=[sql_url], environ={}) as first:
        first.commit(persona("p1"), memory("m1"))
    with HybridDatabaseManager.open(data_dir, sql_urls=[sql_url], environ={}) as second:
        second.commit(memory("m2"))
        assert second.head() == 3
        assert second.verify().equal
    with HybridDatabaseManager.open(
        data_dir, sql_urls=[sql_url], environ={"PJAI_USE_LIVESTORE": "false"}
    ) as off:
        assert off.store is None
        off.commit(memory("m3"))
        assert off.memories.count() == 3
    with HybridDatabaseManager.open(data_dir, sql_urls=[sql_url], environ={}) as on:
        assert on.store is not None
        assert on.store.head.global_seq == 4
        assert on.verify().equal


def test_verify_names_diverging_rows_and_repair_fixes_them(manager: HybridDatabaseManager) -> None:
    manager.commit(persona("p1"), persona("p2"), memory("m1"), memory("m2"), memory("x", "p2"))
    with manager.shards.shards[0].engine.begin() as conn:
        conn.exec_driver_sql("UPDATE memories SET importance = 0.01 WHERE id = 'm2'")
        conn.exec_driver_sql("DELETE FROM memories WHERE id = 'm1'")
    report = manager.verify()
    assert not report.equal
    memories_report = next(t for t in report.tables if t.table == "memories")
    assert [p.persona_id for p in memories_report.personas] == ["p1"]
    rows = {r.key: r for r in memories_report.personas[0].rows}
    assert rows["m1"].problem == "missing in SQL"
    assert rows["m2"].problem == "differs"
    assert rows["m2"].columns == ["importance"]
    assert manager.repair("sql").events == 5
    assert manager.verify().equal
    assert manager.repair("store").events == 5
    assert manager.verify().equal


@pytest.mark.parametrize(
    ("column", "postgresql", "sqlite"),
    [
        (
            "occurred_at",
            "occurred_at + interval '1 microsecond'",
            "substr(occurred_at, 1, 19) || '.999999+00:00'",
        ),
        ("pinned", "NOT pinned", "1 - pinned"),
        ("tags", """'["a", "c"]'""", """'["a","c"]'"""),
        ("content", "'changed'", "'changed'"),
    ],
)
def test_verify_sees_a_change_in_every_kind_of_column(
    manager: HybridDatabaseManager, column: str, postgresql: str, sqlite: str
) -> None:
    manager.commit(persona("p1"), memory("m1", tags=["a", "b"]), memory("m2", tier="cold"))
    assert manager.verify().equal  # compressed cold content, times and JSON compare alike
    engine = manager.shards.shards[0].engine
    value = postgresql if engine.dialect.name == "postgresql" else sqlite
    with engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE memories SET {column} = {value}")
    memories_report = next(t for t in manager.verify().tables if t.table == "memories")
    rows = memories_report.personas[0].rows
    assert {r.key: r.columns for r in rows} == {"m1": [column], "m2": [column]}


def test_verify_takes_json_numbers_as_postgresql_writes_them_back(
    manager: HybridDatabaseManager,
) -> None:
    from pjai.schema import PersonaCreated
    from pjai.schema.personas import MemoryConfig, ScoringConfig

    # jsonb keeps numbers as numeric: 1e23 comes back as 100000000000000000000000 (which
    # is not the float 1e23 exactly), -0.0 as 0.0
    scoring = ScoringConfig(half_life_days=1e23, access_scale=1e-7, links_weight=-0.0)
    manager.commit(PersonaCreated(persona_id="p1", name="P1", memory=MemoryConfig(scoring=scoring)))
    assert manager.verify().equal


def test_live_queries_follow_the_store_switch(manager: HybridDatabaseManager) -> None:
    manager.commit(persona("p1"))
    counts: list[int] = []
    live = manager.live("SELECT count(*) AS n FROM memories")
    live.subscribe(lambda rows: counts.append(rows[0].n))
    manager.commit(memory("m1"))
    manager.set_flag("use_livestore", False)
    manager.commit(memory("m2"))
    manager.set_flag("use_livestore", True)
    manager.commit(memory("m3"))
    assert counts == [0, 1, 2, 3]


def test_with_the_store_off_a_refresh_hears_of_other_processes_commits(
    data_dir: Path, sql_url: str
) -> None:
    # The web app refreshes now and then; a CLI command commits to SQL meanwhile.
    off = {"PJAI_USE_LIVESTORE": "false"}
    with HybridDatabaseManager.open(data_dir, sql_urls=[sql_url], environ=off) as running:
        running.commit(persona("p1"))
        counts: list[int] = []
        live = running.live("SELECT count(*) AS n FROM memories")
        live.subscribe(lambda rows: counts.append(rows[0].n))
        assert running.refresh() is False
        with HybridDatabaseManager.open(data_dir, sql_urls=[sql_url], environ=off) as command:
            command.commit(memory("m1"))
        assert running.refresh() is True
        assert counts == [0, 1]
        assert running.refresh() is False
        (record,) = running.commit(memory("m2"))  # and commits after them
        assert record.position.global_seq == 3


def test_a_commit_after_another_process_wrote_with_the_store_off_follows_it(
    data_dir: Path, sql_url: str
) -> None:
    # The running process's next position is taken in SQL: it takes the other's events
    # in first, then commits after them.
    with HybridDatabaseManager.open(data_dir, sql_urls=[sql_url], environ={}) as running:
        running.commit(persona("p1"))
        off = {"PJAI_USE_LIVESTORE": "false"}
        with HybridDatabaseManager.open(data_dir, sql_urls=[sql_url], environ=off) as command:
            command.commit(memory("written-off"))
        (record,) = running.commit(memory("written-on"))
        assert record.position.global_seq == 3
        assert {r.id for r in running.query("SELECT id FROM memories")} == {
            "written-off",
            "written-on",
        }
        assert running.verify().equal


@pytest.mark.parametrize(
    ("strength", "rate", "days"),
    [
        (1.0, 1.0, 800.0),  # exp(-800) is below the smallest float
        (1e-300, 1.0, 60.0),  # the product is
        (1.0, 1.0, 744.0),  # a result this small counts as none
    ],
)
def test_a_decay_below_the_smallest_float_leaves_no_strength_on_either_side(
    manager: HybridDatabaseManager, strength: float, rate: float, days: float
) -> None:
    # PostgreSQL refuses a float operation that underflows; SQLite gives 0.
    from pjai.schema import MemoryLinked, MemoryLinksDecayed

    manager.commit(persona("p1"), memory("a"), memory("b"))
    manager.commit(
        MemoryLinked(
            persona_id="p1", source_id="a", target_id="b", strength=strength, decay_rate=rate
        )
    )
    manager.commit(MemoryLinksDecayed(persona_id="p1", days=days))
    assert manager.quarantine().events == []
    assert manager.verify().equal
    assert [r.strength for r in manager.query("SELECT strength FROM memory_links")] == [0.0]


def test_a_decay_keeps_a_small_strength_the_same_on_both_sides(
    manager: HybridDatabaseManager,
) -> None:
    from pjai.schema import MemoryLinked, MemoryLinksDecayed

    manager.commit(persona("p1"), memory("a"), memory("b"))
    manager.commit(
        MemoryLinked(persona_id="p1", source_id="a", target_id="b", strength=0.5, decay_rate=2.0)
    )
    manager.commit(MemoryLinksDecayed(persona_id="p1", days=300))
    assert manager.verify().equal
    (row,) = manager.query("SELECT strength FROM memory_links")
    assert row.strength == 0.5 * math.exp(-600)


def test_memory_system_events_match_on_both_sides(manager: HybridDatabaseManager) -> None:
    from pjai.schema import (
        BookmarkCreated,
        MemoryArchived,
        MemoryLinked,
        MemoryLinksDecayed,
        MemoryTierChanged,
    )

    manager.commit(
        persona("p1"), memory("a", content="alpha " * 50), memory("b", tier="cold"), memory("c")
    )
    manager.commit(
        MemoryLinked(persona_id="p1", source_id="a", target_id="b", decay_rate=0.05),
        MemoryTierChanged(memory_id="a", persona_id="p1", tier="cold", reason="age_decay"),
        MemoryArchived(memory_id="c", persona_id="p1", reason="retention"),
        MemoryLinksDecayed(persona_id="p1", days=3),
        BookmarkCreated(bookmark_id="bm", persona_id="p1", name="Everything"),
    )
    assert manager.verify().equal
    got = manager.memories.get("a")
    assert got is not None
    assert got.content == "alpha " * 50
    assert got.tier == "cold"
