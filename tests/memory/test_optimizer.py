"""The optimizer: capacities hold, retention and size limits apply, a rerun does nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pjai.errors import ConfigError
from pjai.memory import optimizer
from pjai.memory.analytics import health
from pjai.memory.optimizer import optimize
from pjai.schema import (
    MemoryAccessed,
    MemoryArchived,
    MemoryDeleted,
    MemoryImported,
    MemoryTierChanged,
    PersonaCreated,
)
from pjai.schema.personas import MemoryConfig, ScoringConfig, TierCapacities, TierShares
from pjai.store import Store
from tests.helpers import memory

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)

FILL = ScoringConfig(target=TierShares(hot=1, warm=0, cold=0))
"""A target that fills the tiers in order, each up to its capacity."""


def tiers(store: Store, persona_id: str = "p1") -> dict[str, str]:
    rows = store.query(
        "SELECT id, tier FROM memories WHERE persona_id = :p AND deleted_at IS NULL ORDER BY id",
        {"p": persona_id},
    )
    return {r.id: r.tier for r in rows}


def with_config(store: Store, **config: object) -> None:
    memory_config = MemoryConfig(**config)  # type: ignore[arg-type]
    store.commit(PersonaCreated(persona_id="p1", name="P", memory=memory_config))


def test_tiers_follow_the_ranking_and_capacities_hold(store: Store) -> None:
    with_config(store, capacities=TierCapacities(hot=2, warm=3, cold=100), scoring=FILL)
    store.commit(*[memory(f"m{i}", importance=i / 10, tier="warm") for i in range(10)])
    report = optimize(store, "p1", now=NOW)
    placed = tiers(store)
    assert [m for m, t in placed.items() if t == "hot"] == ["m8", "m9"]
    assert sorted(m for m, t in placed.items() if t == "warm") == ["m5", "m6", "m7"]
    assert report.tiers_after == {"hot": 2, "warm": 3, "cold": 5}
    assert (report.promoted, report.demoted) == (2, 5)
    events = [e.record for e in store.events()][-7:]
    assert {e.name for e in events} == {"v1.MemoryTierChanged"}
    again = optimize(store, "p1", now=NOW + timedelta(minutes=20))
    assert again.events == 0


def test_opened_memories_rank_higher(store: Store) -> None:
    with_config(store, capacities=TierCapacities(hot=1, warm=1, cold=100), scoring=FILL)
    store.commit(memory("plain", importance=0.5), memory("opened", importance=0.5))
    store.commit(*[MemoryAccessed(memory_id="opened", persona_id="p1") for _ in range(5)])
    optimize(store, "p1", now=NOW)
    assert tiers(store)["opened"] == "hot"
    reasons = [e.record for e in store.events() if e.record.name == "v1.MemoryTierChanged"]
    assert reasons


@pytest.mark.parametrize("half_life_days", [1e9, 1e10, 1.7976931348623157e308])
def test_a_half_life_longer_than_a_time_span_holds_ranks_the_memories(
    store: Store, half_life_days: float
) -> None:
    # Any half-life the schema takes (a persona another instance configured too): one
    # past the longest time span Python holds (999,999,999 days) counts every opened
    # memory as opened within it.
    scoring = ScoringConfig(half_life_days=half_life_days, target=FILL.target)
    with_config(store, capacities=TierCapacities(hot=1, warm=1, cold=100), scoring=scoring)
    store.commit(memory("plain", importance=0.5), memory("opened", importance=0.5))
    store.commit(*[MemoryAccessed(memory_id="opened", persona_id="p1") for _ in range(5)])
    report = optimize(store, "p1", now=NOW + timedelta(days=3650))
    assert tiers(store) == {"opened": "hot", "plain": "warm"}
    assert [(m.memory_id, m.reason) for m in report.moves] == [("opened", "access_pattern")]


def test_retention_archives_or_deletes_old_memories(store: Store) -> None:
    old = NOW - timedelta(days=400)
    with_config(store, retention_days=365, retention_action="archive")
    store.commit(
        MemoryImported(
            memory_id="old",
            persona_id="p1",
            content="x",
            source="test",
            created_at=old,
            updated_at=old,
        ),
        memory("new"),
    )
    report = optimize(store, "p1", now=datetime.now(UTC))
    assert report.archived == 1
    row = store.query("SELECT tier, archived_at FROM memories WHERE id = 'old'")[0]
    assert row.tier == "cold"
    assert row.archived_at is not None
    assert optimize(store, "p1").events == 0


def test_retention_delete_action(store: Store) -> None:
    old = NOW - timedelta(days=40)
    with_config(store, retention_days=30, retention_action="delete")
    store.commit(
        MemoryImported(
            memory_id="old",
            persona_id="p1",
            content="x",
            source="t",
            created_at=old,
            updated_at=old,
        )
    )
    assert optimize(store, "p1", now=NOW).deleted_for_retention == 1
    assert tiers(store) == {}


def test_over_max_deletes_only_unimportant_lowest_ranked(store: Store) -> None:
    with_config(
        store,
        max_memories=3,
        importance_threshold=0.5,
        scoring=ScoringConfig(recency_weight=0, frequency_weight=0, links_weight=0),
    )
    store.commit(*[memory(f"m{i}", importance=i / 10) for i in range(1, 7)])
    report = optimize(store, "p1", now=NOW)
    assert report.deleted_for_space == 3
    assert sorted(tiers(store)) == ["m4", "m5", "m6"]
    with_important = Store.memory()
    with_config(with_important, max_memories=1, importance_threshold=0.5)
    with_important.commit(memory("a", importance=0.9), memory("b", importance=0.8))
    report = optimize(with_important, "p1", now=NOW)
    assert report.deleted_for_space == 0
    assert "none of them was deleted" in report.notes[0]
    with_important.close()


def test_unknown_persona(store: Store) -> None:
    with pytest.raises(ConfigError, match="no live persona"):
        optimize(store, "ghost")


def test_a_plan_made_stale_by_another_writer_is_made_again(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_config(store, capacities=TierCapacities(hot=1, warm=10, cold=10), scoring=FILL)
    store.commit(*[memory(f"m{i}", importance=i / 10, tier="hot") for i in range(4)])
    real = optimizer.scored_memories
    calls = []

    def then_someone_deletes(*args: Any) -> Any:
        found = real(*args)
        if not calls:  # between this plan and its commit, m1 goes away
            store.commit(MemoryDeleted(memory_id="m1", persona_id="p1"))
        calls.append(len(found))
        return found

    monkeypatch.setattr(optimizer, "scored_memories", then_someone_deletes)
    report = optimize(store, "p1", now=NOW)
    assert calls == [4, 3]  # planned twice; the first plan's commit was refused whole
    assert tiers(store) == {"m0": "warm", "m2": "warm", "m3": "hot"}
    assert report.demoted == 2


def test_an_archived_memory_taken_out_of_cold_is_ranked_again(store: Store) -> None:
    with_config(store, capacities=TierCapacities(hot=1, warm=10, cold=10), scoring=FILL)
    store.commit(memory("a", importance=0.9, tier="hot"), memory("b", importance=0.1))
    store.commit(MemoryArchived(memory_id="b", persona_id="p1"))
    store.commit(MemoryTierChanged(memory_id="b", persona_id="p1", tier="hot", reason="manual"))
    assert store.query("SELECT archived_at FROM memories WHERE id = 'b'")[0].archived_at is None
    optimize(store, "p1", now=NOW)
    assert tiers(store) == {"a": "hot", "b": "warm"}


def test_the_default_target_splits_ten_thirty_sixty(store: Store) -> None:
    with_config(store)
    store.commit(*[memory(f"m{i:02}", importance=i / 20) for i in range(20)])
    report = optimize(store, "p1", now=NOW)
    assert report.tiers_after == {"hot": 2, "warm": 6, "cold": 12}
    assert [m for m, t in tiers(store).items() if t == "hot"] == ["m18", "m19"]


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"capacities": TierCapacities(hot=3, warm=5, cold=1_000)},
        {"scoring": ScoringConfig(target=TierShares(hot=0.2, warm=0.2, cold=0.6))},
        {"scoring": FILL, "capacities": TierCapacities(hot=10, warm=20, cold=1_000)},
    ],
    ids=["default", "small capacities", "own target", "fill"],
)
def test_after_a_run_health_finds_the_tiers_on_target(store: Store, config: dict[str, Any]) -> None:
    with_config(store, **config)
    store.commit(*[memory(f"m{i:02}", importance=i / 60, tier="hot") for i in range(60)])
    persona = optimizer.load_persona(store, "p1")
    assert persona is not None
    before = health(store, persona, now=NOW)
    assert [a.message for a in before.alerts if "fragmentation" in a.message]
    optimize(store, "p1", now=NOW)
    after = health(store, persona, now=NOW)
    assert after.fragmentation == 0.0
    assert [a.message for a in after.alerts if "fragmentation" in a.message] == []
    assert optimize(store, "p1", now=NOW).events == 0


def test_pinned_memories_stay_and_take_up_their_places(store: Store) -> None:
    with_config(store)
    store.commit(
        *[memory(f"m{i}", importance=0.9) for i in range(9)],
        memory("low", importance=0.0, tier="hot", pinned=True),
        memory("top", importance=1.0, tier="cold", pinned=True),
    )
    report = optimize(store, "p1", now=NOW)
    placed = tiers(store)
    assert (placed["low"], placed["top"]) == ("hot", "cold")  # pinned: left alone
    assert report.tiers_after == {"hot": 2, "warm": 3, "cold": 6}  # 11: 2, 3, 6
    assert "low" not in {m.memory_id for m in report.moves}
    assert "top" not in {m.memory_id for m in report.moves}


def test_a_pinned_memory_is_not_deleted_for_space(store: Store) -> None:
    # Pinned is the user's choice: it stays until they move or unpin it (or retention
    # archives it), however low its score.
    with_config(store, max_memories=1, importance_threshold=0.5)
    store.commit(
        memory("pinned", importance=0.1, tier="hot", pinned=True),
        memory("a", importance=0.2),
        memory("b", importance=0.25),
    )
    report = optimize(store, "p1", now=NOW)
    assert report.deleted_for_space == 2
    assert list(tiers(store)) == ["pinned"]
    store.commit(memory("c", importance=0.1, tier="cold", pinned=True))
    report = optimize(store, "p1", now=NOW)
    assert report.deleted_for_space == 0
    assert "1 memories over max_memories (1) are pinned or have importance" in report.notes[0]


def test_pinned_memories_above_the_target_are_noted(store: Store) -> None:
    with_config(store)
    store.commit(*[memory(f"m{i}", tier="hot", pinned=True) for i in range(3)])
    report = optimize(store, "p1", now=NOW)
    assert report.events == 0
    assert report.notes == [
        "3 pinned or archived memories keep the hot tier above its target of 1: the "
        "optimizer does not move them (unpin with pjai memory update ID --unpin; an "
        "archived memory leaves cold when moved)"
    ]


def test_the_report_says_which_memories_moved_and_why(store: Store) -> None:
    old = NOW - timedelta(days=400)
    with_config(store, retention_days=365, scoring=FILL, capacities=TierCapacities(hot=1))
    store.commit(
        MemoryImported(
            memory_id="old", persona_id="p1", content="x", source="t", created_at=old,
            updated_at=old,
        ),
        memory("a", importance=0.9),
        memory("b", importance=0.1, tier="hot"),
    )  # fmt: skip
    report = optimize(store, "p1", now=NOW)
    moves = {m.memory_id: (m.action, m.tier, m.to, m.reason) for m in report.moves}
    assert moves == {
        "old": ("archived", "warm", "cold", "retention"),
        "a": ("moved", "warm", "hot", "optimization"),
        "b": ("moved", "hot", "warm", "optimization"),
    }
