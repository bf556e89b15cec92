"""The memory score: bounded, and never lower when what it rewards grows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pjai.memory.scoring import MemoryFacts, recency, score
from pjai.schema.personas import ScoringConfig

NOW = datetime(2026, 6, 1, tzinfo=UTC)

weights = st.floats(min_value=0, max_value=5)
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
