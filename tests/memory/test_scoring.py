"""The memory score: bounded, and never lower when what it rewards grows; tier targets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pjai.memory.scoring import MemoryFacts, recency, score, tier_targets
from pjai.schema.personas import ScoringConfig, TierCapacities, TierShares

NOW = datetime(2026, 6, 1, tzinfo=UTC)

weights = st.floats(min_value=0, max_value=5) | st.floats(min_value=0, max_value=1.7e308)
configs = st.builds(
    ScoringConfig,
    importance_weight=weights,
    recency_weight=weights,
    frequency_weight=weights,
    links_weight=st.floats(min_value=0.01, max_value=5),
    half_life_days=st.floats(min_value=0.5, max_value=365),
    recency_floor=st.floats(min_value=0, max_value=1),
)
ages = st.floats(min_value=0, max_value=3_000)
facts = st.builds(
    lambda importance, age, accesses, links: MemoryFacts(
        importance=importance,
        created_at=NOW - timedelta(days=age),
        access_count=accesses,
        link_count=links,
    ),
    st.floats(min_value=0, max_value=1),
    ages,
    st.integers(min_value=0, max_value=1_000),
    st.integers(min_value=0, max_value=100),
)


@given(facts, configs)
def test_score_is_within_zero_and_one(f: MemoryFacts, config: ScoringConfig) -> None:
    assert 0.0 <= score(f, NOW, config) <= 1.0


@given(facts, configs, st.floats(min_value=0, max_value=1))
def test_more_importance_never_lowers_the_score(
    f: MemoryFacts, config: ScoringConfig, extra: float
) -> None:
    higher = MemoryFacts(
        min(1.0, f.importance + extra),
        f.created_at,
        f.last_accessed_at,
        f.access_count,
        f.link_count,
    )
    assert score(higher, NOW, config) >= score(f, NOW, config) - 1e-12


@given(facts, configs, ages)
def test_more_recent_never_lowers_the_score(
    f: MemoryFacts, config: ScoringConfig, younger: float
) -> None:
    newer = MemoryFacts(
        f.importance, f.created_at + timedelta(days=younger), None, f.access_count, f.link_count
    )
    assert score(newer, NOW, config) >= score(f, NOW, config) - 1e-12


@given(
    facts,
    configs,
    st.integers(min_value=0, max_value=1_000),
    st.integers(min_value=0, max_value=100),
)
def test_more_accesses_or_links_never_lower_the_score(
    f: MemoryFacts, config: ScoringConfig, accesses: int, links: int
) -> None:
    busier = MemoryFacts(
        f.importance,
        f.created_at,
        f.last_accessed_at,
        f.access_count + accesses,
        f.link_count + links,
    )
    assert score(busier, NOW, config) >= score(f, NOW, config) - 1e-12


def test_opening_a_memory_refreshes_its_recency() -> None:
    config = ScoringConfig(half_life_days=10, recency_floor=0.0)
    old = MemoryFacts(0.5, NOW - timedelta(days=10))
    opened = MemoryFacts(0.5, NOW - timedelta(days=10), last_accessed_at=NOW)
    assert recency(old, NOW, config) == pytest.approx(0.5)
    assert recency(opened, NOW, config) == pytest.approx(1.0)
    assert recency(MemoryFacts(0.5, NOW - timedelta(days=10_000)), NOW, ScoringConfig()) == 0.05


def test_weights_pick_what_matters() -> None:
    only_importance = ScoringConfig(recency_weight=0, frequency_weight=0, links_weight=0)
    assert score(
        MemoryFacts(0.7, NOW - timedelta(days=400)), NOW, only_importance
    ) == pytest.approx(0.7)
    with pytest.raises(ValueError, match="add up to zero"):
        score(
            MemoryFacts(0.7, NOW),
            NOW,
            ScoringConfig(
                importance_weight=0, recency_weight=0, frequency_weight=0, links_weight=0
            ),
        )


def test_only_the_ratio_of_the_weights_counts_however_large_they_are() -> None:
    # Weights near the largest float add up to infinity: the scores must not turn to
    # 0 or NaN, which would rank every memory alike.
    rest = {"frequency_weight": 0, "links_weight": 0}
    huge = ScoringConfig(importance_weight=1e308, recency_weight=1e308, **rest)
    even = ScoringConfig(importance_weight=1, recency_weight=1, **rest)
    for importance in (0.0, 0.1, 1.0):
        f = MemoryFacts(importance, NOW - timedelta(days=30))
        assert score(f, NOW, huge) == pytest.approx(score(f, NOW, even))


ROOMY = TierCapacities(hot=1_000, warm=1_000, cold=1_000)


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (0, (0, 0, 0)),
        (1, (1, 0, 0)),  # the best memory is hot
        (3, (1, 1, 1)),  # 0.3 and 1.2 round up
        (5, (1, 1, 3)),
        (10, (1, 3, 6)),
        (15, (2, 4, 9)),  # 1.5 and 6 at the boundaries
        (100, (10, 30, 60)),  # 40.00000000000001 is 40
    ],
)
def test_targets_split_by_the_shares(count: int, expected: tuple[int, int, int]) -> None:
    targets = tier_targets(count, TierShares(), ROOMY)
    assert (targets["hot"], targets["warm"], targets["cold"]) == expected


def test_what_a_tier_cannot_hold_goes_to_the_next() -> None:
    caps = TierCapacities(hot=100, warm=1_000, cold=10_000)
    assert tier_targets(2_000, TierShares(), caps) == {"hot": 100, "warm": 700, "cold": 1_200}
    small = TierCapacities(hot=1, warm=2, cold=3)
    assert tier_targets(20, TierShares(), small) == {"hot": 1, "warm": 2, "cold": 17}


def test_what_cold_cannot_hold_goes_up_where_there_is_room() -> None:
    # Only when every tier is full does cold pass its capacity.
    caps = TierCapacities(hot=100, warm=1_000, cold=10)
    assert tier_targets(100, TierShares(), caps) == {"hot": 10, "warm": 80, "cold": 10}
    tight = TierCapacities(hot=20, warm=30, cold=10)
    assert tier_targets(100, TierShares(), tight) == {"hot": 20, "warm": 30, "cold": 50}
    assert tier_targets(55, TierShares(), tight) == {"hot": 15, "warm": 30, "cold": 10}


def test_all_hot_fills_the_tiers_in_order() -> None:
    caps = TierCapacities(hot=2, warm=3, cold=100)
    fill = TierShares(hot=1, warm=0, cold=0)
    assert tier_targets(10, fill, caps) == {"hot": 2, "warm": 3, "cold": 5}


def test_shares_are_scaled_to_add_up_to_one() -> None:
    halves = TierShares(hot=0.5, warm=0.5, cold=0.5)
    assert tier_targets(9, halves, ROOMY) == {"hot": 3, "warm": 3, "cold": 3}
    nothing = TierShares(hot=0, warm=0, cold=0)
    assert tier_targets(10, nothing, ROOMY) == tier_targets(10, TierShares(), ROOMY)


@given(
    st.integers(min_value=0, max_value=5_000),
    st.builds(TierShares, hot=st.floats(0, 1), warm=st.floats(0, 1), cold=st.floats(0, 1)),
    st.builds(
        TierCapacities,
        hot=st.integers(1, 500),
        warm=st.integers(1, 500),
        cold=st.integers(1, 500),
    ),
)
def test_targets_place_every_memory_within_hot_and_warm_capacity(
    count: int, shares: TierShares, caps: TierCapacities
) -> None:
    targets = tier_targets(count, shares, caps)
    assert sum(targets.values()) == count
    assert 0 <= targets["hot"] <= caps.hot
    assert 0 <= targets["warm"] <= caps.warm
    assert targets["cold"] >= 0
    if count <= caps.hot + caps.warm + caps.cold:
        assert targets["cold"] <= caps.cold
