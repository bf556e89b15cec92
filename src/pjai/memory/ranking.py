"""How search hits are ranked past their own scores: two lists fused into one (hybrid
search), the dates the search text names, and context expansion; and the ranking
parameters a search takes (:class:`Tuning`).

Each list's scores are scaled to 0..1 within it first (min-max), so that lists on
different scales (BM25, ``ts_rank``, cosine similarity) can be weighed together.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import or_, select

from pjai.errors import QueryError
from pjai.memory.backend import Backend
from pjai.memory.hits import HIT_COLUMNS, SearchHit
from pjai.schema.expressions import in_parts
from pjai.schema.selection import MemoryFilter, memory_conditions
from pjai.schema.tables import memories, memory_links

__all__ = ["TUNING", "Tuning", "fuse", "rerank", "with_dates", "with_neighbours"]


@dataclass(frozen=True, slots=True)
class Tuning:
    """The ranking parameters a benchmark may choose (``pjai bench recall --folds``
    chooses them on conversations other than those it reports on)."""

    summary_weight: float = 0.5
    """How much a match in the summary counts against one in the name, content or tags
    (1). A summary often holds context (for conversation memories, the message replied
    to), so by default it counts half."""
    keyword_weight: float = 0.6
    """Hybrid ranking: the keyword score's share of the fused score (the semantic
    score has the rest)."""
    neighbour_weight: float = 0.0
    """Context expansion: a memory ``temporal``-ly linked to a hit (the turn before or
    after it in a conversation) gains this share of the hit's normalised score, so the
    turns around a match rank near it. 0: no expansion."""
    date_weight: float = 0.5
    """Dates in the text ("on 3 June, 2023", "in December 2023"): in keyword and hybrid
    search, a memory that occurred within the span they name
    (:func:`pjai.memory.when.time_window`) gains this much on its normalised score.
    0: dates are words like any other. Every fold of
    ``pjai bench recall --folds`` chose 0.5, the most it offered."""

    def __post_init__(self) -> None:
        for name in ("summary_weight", "keyword_weight", "neighbour_weight", "date_weight"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise QueryError(f"{name} must be between 0 and 1, got {value}")


TUNING = Tuning()
"""The ranking parameters searches use unless told otherwise."""


def rerank(
    backend: Backend,
    ranked: list[SearchHit],
    where: MemoryFilter,
    limit: int,
    tuning: Tuning,
    window: tuple[datetime, datetime] | None,
) -> list[SearchHit]:
    """The best ``limit`` of a deeper list, with the text's dates and then context
    expansion taken into account as ``tuning`` says."""
    if window is not None:
        ranked = with_dates(ranked, window, tuning.date_weight)
    if tuning.neighbour_weight > 0:
        return with_neighbours(backend, ranked, where, limit, tuning.neighbour_weight)
    return ranked[:limit]


def with_dates(
    ranked: list[SearchHit], window: tuple[datetime, datetime], weight: float
) -> list[SearchHit]:
    """``ranked`` re-ranked with scores scaled to 0..1, each memory that occurred
    within ``window`` (start included, end not) gaining ``weight``."""
    own = _normalised(ranked)
    start, end = window

    def score(hit: SearchHit) -> float:
        when = hit.occurred_at if hit.occurred_at.tzinfo else hit.occurred_at.replace(tzinfo=UTC)
        return own[hit.memory_id] + (weight if start <= when < end else 0.0)

    rescored = [replace(hit, score=score(hit)) for hit in ranked]
    return sorted(rescored, key=lambda h: (-h.score, h.memory_id))


def _normalised(hits: list[SearchHit]) -> dict[str, float]:
    """Scores scaled to 0..1 within their list (the best 1, the worst 0)."""
    if not hits:
        return {}
    high = max(h.score for h in hits)
    low = min(h.score for h in hits)
    spread = high - low
    return {h.memory_id: (h.score - low) / spread if spread else 1.0 for h in hits}


def with_neighbours(
    backend: Backend, ranked: list[SearchHit], where: MemoryFilter, limit: int, weight: float
) -> list[SearchHit]:
    """``ranked`` re-ranked with context expansion: scores scaled to 0..1, and each
    memory ``temporal``-ly linked to one of them (either way) gains ``weight`` times the
    best such neighbour's score; memories found only so are read (as ``where`` allows)
    and come with the source ``context``. The best ``limit``."""
    own = _normalised(ranked)
    if not own:
        return []
    links = memory_links.c
    rows = [
        row
        for part in in_parts(list(own))
        for row in backend.query(
            select(links.source_id, links.target_id).where(
                links.kind == "temporal", or_(links.source_id.in_(part), links.target_id.in_(part))
            )
        )
    ]
    lift: dict[str, float] = {}
    for source_id, target_id in rows:
        for near, far in ((source_id, target_id), (target_id, source_id)):
            if near in own:
                lift[far] = max(lift.get(far, 0.0), weight * own[near])
    scores = {m: own.get(m, 0.0) + lift.get(m, 0.0) for m in own.keys() | lift.keys()}
    order = sorted(scores, key=lambda m: (-scores[m], m))
    hits = {h.memory_id: h for h in ranked}
    wanted = [m for m in order[: limit * 2] if m not in hits]
    for part in in_parts(wanted):
        query = select(*HIT_COLUMNS).where(memories.c.id.in_(part), *memory_conditions(where))
        for row in backend.query(query):
            hits[row.id] = SearchHit.from_row(row, 0.0, "context")
    best = [m for m in order if m in hits][:limit]
    return [
        replace(
            hits[m],
            score=scores[m],
            sources=hits[m].sources + (("context",) if m in lift and m in own else ()),
        )
        for m in best
    ]


def fuse(
    keyword: list[SearchHit],
    semantic: list[SearchHit],
    limit: int,
    *,
    keyword_weight: float = TUNING.keyword_weight,
) -> list[SearchHit]:
    """The union of both lists ranked by a weighted sum of their normalised scores.

    Each list's scores are scaled to 0..1 (min-max); a memory's hybrid score is
    ``keyword_weight`` times its keyword score plus the rest times its semantic score,
    0 for a list it is not in.
    """
    if not 0.0 <= keyword_weight <= 1.0:
        raise QueryError(f"keyword_weight must be between 0 and 1, got {keyword_weight}")
    scores: dict[str, float] = {}
    hits: dict[str, SearchHit] = {}
    sources: dict[str, list[str]] = {}
    for weight, ranked, source in (
        (keyword_weight, keyword, "keyword"),
        (1.0 - keyword_weight, semantic, "semantic"),
    ):
        for memory_id, value in _normalised(ranked).items():
            scores[memory_id] = scores.get(memory_id, 0.0) + weight * value
            sources.setdefault(memory_id, []).append(source)
        for hit in ranked:
            hits.setdefault(hit.memory_id, hit)
    ordered = sorted(scores, key=lambda m: (-scores[m], m))[:limit]
    return [replace(hits[m], score=scores[m], sources=tuple(sources[m])) for m in ordered]
