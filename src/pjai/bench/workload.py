"""What the benchmarks share: the tier mix of generated memories and step counting."""

from __future__ import annotations

from pjai.schema.fields import Tier
from pjai.schema.types import Progress

__all__ = ["Steps", "tier_of"]

TIER_MIX: tuple[Tier, ...] = ("hot", "warm", "warm", *("cold",) * 7)
"""One memory in ten hot, two warm, seven cold: a store after some optimizing."""


def tier_of(index: int, personas: int) -> Tier:
    """The tier of generated memory ``index`` when memories go round ``personas``."""
    return TIER_MIX[(index // personas) % len(TIER_MIX)]


class Steps:
    """Counts a benchmark's steps and reports them as ``progress(done, total)``."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total = total
        self.done = 0
        self._progress = progress

    def __call__(self) -> None:
        """One more step done."""
        self.done += 1
        if self._progress is not None:
            self._progress(self.done, self.total)
