"""Summaries of latency samples."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["ms", "percentile"]


def percentile(samples: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100) by linear interpolation between closest ranks."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ms(seconds: float) -> float:
    """Seconds as milliseconds rounded to microseconds."""
    return round(seconds * 1000, 3)
