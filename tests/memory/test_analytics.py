"""Memory health (score, alerts, histogram, stale share) and the dashboard's queries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from pjai.errors import QueryError
from pjai.memory.analytics import (
    DASHBOARD,
    Alert,
    dashboard_query,
    health,
    health_from_rows,
    health_query,
)
from pjai.memory.optimizer import load_persona
from pjai.schema import (
    MemoryAccessed,
    MemoryDeleted,
    MemoryImported,
    PersonaActivated,
    PersonaCreated,
    PersonaDeleted,
    PersonaUpdated,
)
from pjai.schema.personas import MemoryConfig, ScoringConfig, TierCapacities, TierShares
from pjai.store import Store
from tests.helpers import memory, persona

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def rows(
    hot: int = 0,
    warm: int = 0,
    cold: int = 0,
    *,
    capacities: tuple[int, int, int] = (100, 1_000, 10_000),
    stale: int = 0,
    persona_id: str = "p1",
) -> list[Any]:
    """Rows as HEALTH_SQL returns them, every memory in decile 5; ``stale`` of the cold."""
    cap_hot, cap_warm, cap_cold = capacities
    out = []
    for tier, n in (("hot", hot), ("warm", warm), ("cold", cold)):
        if n:
            out.append(
                SimpleNamespace(
                    persona_id=persona_id,
                    cap_hot=cap_hot,
                    cap_warm=cap_warm,
                    cap_cold=cap_cold,
                    scoring={},
                    tier=tier,
                    decile=5,
                    n=n,
                    stale_90=stale if tier == "cold" else 0,
                )
            )
    return out


def test_memories_on_target_are_fully_healthy() -> None:
    h = health_from_rows(rows(10, 30, 60))
    assert (h.memories, h.tiers) == (100, {"hot": 10, "warm": 30, "cold": 60})
    assert h.capacity_use == {"hot": 0.1, "warm": 0.03, "cold": 0.006}
    assert (h.fragmentation, h.stale_share, h.score, h.alerts) == (0.0, 0.0, 100.0, [])
    assert h.importance_histogram == [0, 0, 0, 0, 0, 100, 0, 0, 0, 0]


@pytest.mark.parametrize(
    ("hot", "capacity", "level", "score"),
    [
        (17, 20, None, 100.0),  # 85 %: not above
        (18, 20, "warning", 90.0),
        (19, 20, "warning", 90.0),  # 95 %: not above
        (24, 25, "critical", 75.0),
    ],
)
def test_capacity_alerts(hot: int, capacity: int, level: str | None, score: float) -> None:
    h = health_from_rows(rows(hot, hot * 3, hot * 6, capacities=(capacity, 1_000, 10_000)))
    assert h.fragmentation == 0.0
    assert [a.level for a in h.alerts] == ([level] if level else [])
    assert h.score == score


def test_the_worst_tier_sets_the_capacity_penalty() -> None:
    h = health_from_rows(rows(9, 30, 60, capacities=(10, 30, 1_000)))
    assert h.alerts == [
        Alert("warning", "hot tier at 90% of capacity"),
        Alert("critical", "warm tier at 100% of capacity"),
    ]
    assert h.score == 75.0


@pytest.mark.parametrize(
    ("hot", "warm", "cold", "fragmentation", "level", "score"),
    [
        (0, 5, 5, 20.0, None, 100.0),
        (0, 8, 2, 50.0, "warning", 90.0),
        (0, 10, 0, 70.0, "critical", 80.0),
    ],
)
def test_fragmentation_alerts(
    hot: int, warm: int, cold: int, fragmentation: float, level: str | None, score: float
) -> None:
    h = health_from_rows(rows(hot, warm, cold))
    assert h.fragmentation == fragmentation
    assert [a.level for a in h.alerts] == ([level] if level else [])
    assert h.score == score


def test_fragmentation_measures_against_the_given_target() -> None:
    h = health_from_rows(rows(0, 10, 0), TierShares(hot=0, warm=1, cold=0))
    assert (h.fragmentation, h.alerts) == (0.0, [])


def test_stale_share_costs_up_to_thirty_points() -> None:
    h = health_from_rows(rows(10, 30, 60, stale=50))
    assert (h.stale_share, h.score) == (0.5, 85.0)


def test_no_memories() -> None:
    empty = SimpleNamespace(
        persona_id="p1",
        cap_hot=1,
        cap_warm=1,
        cap_cold=1,
        scoring=None,
        tier=None,
        decile=None,
        n=0,
        stale_90=None,
    )
    h = health_from_rows([empty])
    assert (h.memories, h.fragmentation, h.stale_share, h.score, h.alerts) == (0, 0, 0, 100, [])


def imported(memory_id: str, persona_id: str = "p1", **fields: Any) -> MemoryImported:
    created = fields.pop("created_at", NOW - timedelta(days=1))
    return MemoryImported(
        memory_id=memory_id,
        persona_id=persona_id,
        content=f"content of {memory_id}",
        source="test",
        created_at=created,
        updated_at=created,
        **fields,
    )


def test_health_of_a_persona_from_the_store(store: Store) -> None:
    config = MemoryConfig(
        capacities=TierCapacities(hot=2, warm=10, cold=10),
        scoring=ScoringConfig(stale_after_days=30),
    )
    old = NOW - timedelta(days=40)
    store.commit(
        PersonaCreated(persona_id="p1", name="P", memory=config),
        persona("p2"),
        imported("h1", tier="hot", importance=1.0),
        imported("h2", tier="hot", importance=0.95),
        imported("w1", tier="warm", importance=0.05, created_at=old),
        imported("w2", importance=0.15, created_at=old, last_accessed_at=NOW - timedelta(days=2)),
        imported("gone", tier="hot", importance=0.5),
        imported("other", "p2", tier="hot"),
    )
    store.commit(MemoryDeleted(memory_id="gone", persona_id="p1"))
    p1 = load_persona(store, "p1")
    assert p1 is not None
    h = health(store, p1, now=NOW)
    assert (h.memories, h.tiers) == (4, {"hot": 2, "warm": 2, "cold": 0})
    assert h.capacity_use == {"hot": 1.0, "warm": 0.2, "cold": 0.0}
    assert h.importance_histogram == [1, 1, 0, 0, 0, 0, 0, 0, 0, 2]
    assert h.stale_share == 0.25  # w1: recorded 40 days ago, never opened
    # Of 4 memories the optimizer aims at 1 hot, 1 warm, 2 cold: 4 are off, halved, of 4.
    assert h.fragmentation == 50.0
    assert [a.level for a in h.alerts] == ["critical", "warning"]
    assert h.score == pytest.approx(100 - 25 - 10 - 30 * 0.25)


def test_health_over_all_personas_adds_them_up(store: Store) -> None:
    store.commit(persona("p1"), persona("p2"), persona("p3"))
    store.commit(memory("a", "p1", tier="hot"), memory("b", "p2"), memory("c", "p2"))
    store.commit(PersonaDeleted(persona_id="p3"))
    h = health(store, now=NOW)
    assert (h.memories, h.tiers) == (3, {"hot": 1, "warm": 2, "cold": 0})
    assert h.capacity_use == {"hot": 1 / 200, "warm": 2 / 2_000, "cold": 0.0}


def test_health_over_all_personas_measures_each_against_its_own_targets(store: Store) -> None:
    # A persona that wants everything hot, with all of it hot, is on target there too.
    hot = MemoryConfig(scoring=ScoringConfig(target=TierShares(hot=1, warm=0, cold=0)))
    store.commit(PersonaCreated(persona_id="p1", name="P", memory=hot))
    store.commit(*[memory(f"m{n}", "p1", tier="hot") for n in range(5)])
    one = load_persona(store, "p1")
    assert one is not None
    assert health(store, one, now=NOW).fragmentation == 0.0
    assert health(store, now=NOW).fragmentation == 0.0


def test_health_over_all_personas_counts_stale_by_each_ones_own_limit(store: Store) -> None:
    strict = MemoryConfig(scoring=ScoringConfig(stale_after_days=30))
    lenient = MemoryConfig(scoring=ScoringConfig(stale_after_days=365))
    store.commit(
        PersonaCreated(persona_id="p1", name="Strict", memory=strict),
        PersonaCreated(persona_id="p2", name="Lenient", memory=lenient),
        persona("p3"),
    )
    ages = {"p1": (40, 100), "p2": (100, 100), "p3": (40, 100)}
    store.commit(
        *[
            imported(f"{p}-{n}", p, created_at=NOW - timedelta(days=days))
            for p, days_ago in ages.items()
            for n, days in enumerate(days_ago)
        ]
    )
    # Stale: both of p1's (30 days), none of p2's (365), the older of p3's (90 by default).
    assert health(store, now=NOW).stale_share == 0.5
    for persona_id, share in (("p1", 1.0), ("p2", 0.0), ("p3", 0.5)):
        one = load_persona(store, persona_id)
        assert one is not None
        assert health(store, one, now=NOW).stale_share == share


def test_unknown_dashboard_query() -> None:
    with pytest.raises(QueryError, match=r"'nope'.*memories_by_tag"):
        dashboard_query("nope")


def test_dashboard_query_fills_in_defaults_it_uses() -> None:
    _, params = dashboard_query("memories_by_tier", persona="p1", tier="hot", unused=1)
    assert params == {"persona": "p1", "tier": "hot", "limit": 50}
    _, params = dashboard_query("memory_statistics")
    assert set(params) == {"persona", "day_ago"}


@pytest.fixture
def dashboard_store(store: Store) -> Store:
    """Two live personas (Ada active), one deleted; memories of varied tier, type, tag."""
    store.commit(
        PersonaCreated(persona_id="ada", name="Ada", description="counts the engines"),
        PersonaCreated(persona_id="bob", name="Bob", description="builds bridges"),
        PersonaCreated(persona_id="cy", name="Cy"),
    )
    store.commit(
        memory("a1", "ada", tier="hot", type="fact", importance=0.9, tags=["math"]),
        memory("a2", "ada", importance=0.8, tags=["math", "work"], occurred_at=NOW),
        memory("a3", "ada", tier="cold", importance=0.2, occurred_at=NOW - timedelta(days=3)),
        memory("a4", "ada", importance=0.6, type="fact", tags=["math"]),
        memory("b1", "bob", importance=0.5),
    )
    store.commit(*[MemoryAccessed(memory_id="a1", persona_id="ada") for _ in range(5)])
    store.commit(MemoryDeleted(memory_id="a4", persona_id="ada"), PersonaDeleted(persona_id="cy"))
    store.commit(PersonaActivated(persona_id="bob"))
    store.commit(PersonaUpdated(persona_id="ada", description="counts the analytical engines"))
    return store


def ids(found: list[Any]) -> list[str]:
    return [r.id for r in found]


DAY = {"start": NOW - timedelta(days=1), "end": NOW + timedelta(days=1)}
EXPECTED: dict[str, tuple[dict[str, Any], Any]] = {
    "active_persona": ({}, ["bob"]),
    "personas": ({}, ["ada", "bob"]),
    "recent_personas": ({"limit": 1}, ["ada"]),
    "persona_search": ({"text": "bridge"}, ["bob"]),
    "memories_by_persona": ({"persona": "ada"}, ["a1", "a2", "a3"]),
    "memories_by_tier": ({"persona": "ada", "tier": "warm"}, ["a2"]),
    "memories_by_type": ({"persona": "ada", "type": "fact"}, ["a1"]),
    "memories_by_importance": ({"persona": "ada", "low": 0.5, "high": 0.85}, ["a2"]),
    "memories_by_date": ({"persona": "ada", **DAY}, ["a2"]),
    "memories_by_tag": ({"persona": "ada", "tag": "math"}, ["a1", "a2"]),
}


@pytest.mark.parametrize("name", EXPECTED)
def test_dashboard_lists(dashboard_store: Store, name: str) -> None:
    params, expected = EXPECTED[name]
    assert ids(dashboard_store.query(*dashboard_query(name, **params))) == expected


def test_persona_search_matches_its_text_literally(store: Store) -> None:
    store.commit(
        PersonaCreated(persona_id="sure", name="100% sure"),
        PersonaCreated(persona_id="snake", name="a_b", description="snake_case"),
        PersonaCreated(persona_id="ada", name="Ada", description="ALL CAPS"),
    )
    for text, expected in [
        ("%", ["sure"]),
        ("_", ["snake"]),
        ("a_b", ["snake"]),
        ("caps", ["ada"]),
    ]:
        assert ids(store.query(*dashboard_query("persona_search", text=text))) == expected, text


def run(store: Store, name: str, **params: Any) -> list[dict[str, Any]]:
    return [r._asdict() for r in store.query(*dashboard_query(name, **params))]


def test_dashboard_statistics(dashboard_store: Store) -> None:
    assert run(dashboard_store, "memory_statistics", persona="ada") == [
        {
            "total": 3,
            "average_importance": pytest.approx((0.9 + 0.8 + 0.2) / 3),
            "high_importance": 2,
            "frequently_accessed": 1,
            "accessed_last_24h": 1,
        }
    ]
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    everyone = run(dashboard_store, "memory_statistics", day_ago=tomorrow)[0]
    assert (everyone["total"], everyone["accessed_last_24h"]) == (4, 0)


def test_dashboard_statistics_count_zero_not_none(store: Store) -> None:
    store.commit(persona(), memory("m1"))
    assert run(store, "memory_statistics") == [
        {
            "total": 1,
            "average_importance": 0.5,
            "high_importance": 0,
            "frequently_accessed": 0,
            "accessed_last_24h": 0,
        }
    ]
    nobody = run(store, "memory_statistics", persona="nobody")[0]
    assert nobody == dict.fromkeys(nobody, 0) | {"average_importance": None}


def test_dashboard_distributions(dashboard_store: Store) -> None:
    assert run(dashboard_store, "tier_distribution", persona="ada") == [
        {"tier": "cold", "n": 1},
        {"tier": "hot", "n": 1},
        {"tier": "warm", "n": 1},
    ]
    assert run(dashboard_store, "type_distribution") == [
        {"type": "note", "n": 3},
        {"type": "fact", "n": 1},
    ]


def test_dashboard_recent_activity(dashboard_store: Store) -> None:
    recent = run(dashboard_store, "recent_activity", limit=3)
    assert [(r["name"], r["persona_id"]) for r in recent] == [
        ("v1.PersonaUpdated", "ada"),
        ("v1.PersonaActivated", "bob"),
        ("v1.PersonaDeleted", "cy"),
    ]
    assert recent[0]["global_seq"] > recent[1]["global_seq"] > recent[2]["global_seq"]


def test_every_dashboard_query_is_tested() -> None:
    tested = {
        *EXPECTED,
        "memory_statistics",
        "tier_distribution",
        "type_distribution",
        "recent_activity",
    }
    assert tested == set(DASHBOARD)


def test_health_and_dashboard_as_live_queries(store: Store) -> None:
    store.commit(persona("p1"), memory("a", "p1", tier="hot"))
    sql, params = health_query("p1", now=NOW)
    scores: list[float] = []
    live = store.live(sql, params)
    live.subscribe(lambda rows: scores.append(health_from_rows(rows).memories))
    counts: list[Any] = []
    tiers = store.live(*dashboard_query("tier_distribution", persona="p1"))
    tiers.subscribe(lambda rows: counts.append({r.tier: r.n for r in rows}))
    store.commit(memory("b", "p1"), memory("c", "p1", tier="cold"))
    store.commit(persona("p2"))  # a persona changes, the results do not
    store.commit(MemoryDeleted(memory_id="a", persona_id="p1"))
    assert scores == [1, 3, 2]
    assert counts == [{"hot": 1}, {"hot": 1, "warm": 1, "cold": 1}, {"warm": 1, "cold": 1}]
    live.close()
    tiers.close()
