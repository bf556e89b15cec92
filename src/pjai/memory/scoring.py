"""How PJai ranks a persona's memories: one score in 0..1 per memory.

    score = (w_i * importance + w_r * recency + w_f * frequency + w_l * links)
            / (w_i + w_r + w_f + w_l)

    recency   = max(floor, 0.5 ** (age_days / half_life_days))
                age counted from the later of created_at and last_accessed_at,
                so opening a memory refreshes it
    frequency = 1 - exp(-access_count / access_scale)
    links     = 1 - exp(-link_count / link_scale)

Weights, half-life, floor and scales come from the persona's
:class:`~pjai.schema.personas.ScoringConfig`. Every term is non-decreasing in what it
measures and the weights are not negative, so the score never falls when importance,
recency, access count or link count grows.

How many of a persona's memories each tier should hold, :func:`tier_targets`, is
defined here once: the optimizer places memories by it and health measures
fragmentation against it. All functions here are pure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from pjai.schema.personas import ScoringConfig, TierCapacities, TierShares

__all__ = ["MemoryFacts", "frequency", "linkage", "recency", "score", "tier_targets"]

SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class MemoryFacts:
    """What the score looks at."""

    importance: float
    created_at: datetime
    last_accessed_at: datetime | None = None
    access_count: int = 0
    link_count: int = 0

    @property
    def touched_at(self) -> datetime:
        """When the memory was last recorded or opened."""
        if self.last_accessed_at is not None and self.last_accessed_at > self.created_at:
            return self.last_accessed_at
        return self.created_at


def recency(facts: MemoryFacts, now: datetime, config: ScoringConfig) -> float:
    """Exponential decay since the memory was last touched, never below the floor."""
    age_days = max(0.0, (now - facts.touched_at).total_seconds() / SECONDS_PER_DAY)
    decayed: float = 0.5 ** (age_days / config.half_life_days)
    return max(config.recency_floor, decayed)


def frequency(access_count: int, config: ScoringConfig) -> float:
    """How often it was opened, saturating towards 1."""
    return 1.0 - math.exp(-max(0, access_count) / config.access_scale)


def linkage(link_count: int, config: ScoringConfig) -> float:
    """How connected it is, saturating towards 1."""
    return 1.0 - math.exp(-max(0, link_count) / config.link_scale)


def score(facts: MemoryFacts, now: datetime, config: ScoringConfig) -> float:
    """The memory's score in 0..1 (see the module doc)."""
    weights = (
        config.importance_weight,
        config.recency_weight,
        config.frequency_weight,
        config.links_weight,
    )
    terms = (
        min(1.0, max(0.0, facts.importance)),
        recency(facts, now, config),
        frequency(facts.access_count, config),
        linkage(facts.link_count, config),
    )
    top = max(weights)
    if top <= 0:
        raise ValueError("scoring weights add up to zero")
    # Relative to the largest: only their ratios count, and weights near the largest
    # float would add up to infinity, making every score 0 or NaN.
    scaled = [w / top for w in weights]
    return sum(w * t for w, t in zip(scaled, terms, strict=True)) / sum(scaled)


def _up(value: float) -> int:
    # Rounded up, but not for a float's error: 100 * 0.4 is 40.00000000000001.
    return math.ceil(value - 1e-9)


def tier_targets(count: int, shares: TierShares, capacities: TierCapacities) -> dict[str, int]:
    """How many of ``count`` memories each tier should hold.

    The target shares (scaled to add up to 1) split ``count``, rounded up at each
    boundary, so that the best memory is hot as soon as hot has a share: hot holds
    ``ceil(count * hot)``, hot and warm together ``ceil(count * (hot + warm))``, cold the
    rest. A tier never gets more than its capacity; what hot cannot hold goes to warm,
    what warm cannot hold to cold, and what cold cannot hold goes back up to warm, then
    hot, where they have room. Only when every tier is full does cold take the rest
    above its capacity (the optimizer's report says so).
    """
    total = shares.hot + shares.warm + shares.cold
    hot_share, warm_share = (shares.hot / total, shares.warm / total) if total > 0 else (0.1, 0.3)
    hot = min(capacities.hot, _up(count * hot_share))
    warm = min(capacities.warm, max(0, _up(count * (hot_share + warm_share)) - hot))
    over = max(0, count - hot - warm - capacities.cold)
    up = min(over, capacities.warm - warm)
    warm += up
    hot += min(over - up, capacities.hot - hot)
    return {"hot": hot, "warm": warm, "cold": count - hot - warm}
