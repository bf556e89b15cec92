"""Search a persona's memories: full-text (FTS5, BM25), semantic, and the two combined.

Keyword search turns the text into an OR of its words (stop words dropped, each word
stemmed by the index's Porter tokenizer) and ranks by BM25 over name, content, summary
and tags (the summary counting half). Filters restrict persona, tiers, types, tags,
importance and the ``occurred_at`` and ``created_at`` ranges. Semantic search needs the
``pjai[embeddings]`` extra (see :mod:`pjai.memory.embeddings`). Hybrid ranking takes the
union of both candidate lists and ranks it by a weighted sum of their scores, each list
scaled to 0..1 (keyword 0.6, semantic 0.4).

A search does not count as opening a memory: no ``v1.MemoryAccessed`` is recorded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pjai.errors import QueryError
from pjai.memory.backend import Backend
from pjai.memory.embeddings import Embeddings
from pjai.schema.fields import Tier
from pjai.schema.search import SEARCH_TABLE

__all__ = ["STOP_WORDS", "Method", "SearchFilter", "SearchHit", "fts_query", "search"]

Method = Literal["keyword", "semantic", "hybrid"]

STOP_WORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "aren't",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "didn't",
        "do",
        "does",
        "doesn't",
        "doing",
        "don't",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "isn't",
        "it",
        "its",
        "itself",
        "just",
        "let",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "did",
        "does",
        "also",
        "ever",
        "get",
        "got",
        "kind",
        "like",
        "make",
        "made",
        "many",
        "much",
        "one",
        "ones",
        "really",
        "something",
        "thing",
        "things",
        "way",
    ]
)
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?", re.UNICODE)

# bm25() column weights: name, content, summary, tags. A summary often holds context
# (for conversation memories, the message replied to), so it counts half.
_WEIGHTS = (1.0, 1.0, 0.5, 1.0)


@dataclass(frozen=True, slots=True)
class SearchFilter:
    """Restrictions on what a search returns; ``None`` or empty means any."""

    persona_id: str | None = None
    tiers: tuple[Tier, ...] = ()
    types: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    importance_min: float | None = None
    importance_max: float | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One memory found: its id, persona, name, content and score (higher is better)."""

    memory_id: str
    persona_id: str
    name: str
    content: str
    tier: str
    occurred_at: datetime
    score: float
    sources: tuple[str, ...] = field(default_factory=tuple)


def fts_query(text: str) -> str | None:
    """The FTS5 query for ``text``: its words OR-ed together, or ``None`` if it has none."""
    words = [w.lower() for w in _WORD.findall(text)]
    terms = dict.fromkeys(w.replace("'", "") for w in words if w not in STOP_WORDS and len(w) > 1)
    if not terms:
        terms = dict.fromkeys(w.replace("'", "") for w in words)
    return " OR ".join(f'"{term}"' for term in terms) or None


def _filters(where: SearchFilter, params: dict[str, Any]) -> list[str]:
    clauses = ["m.deleted_at IS NULL"]
    if where.persona_id is not None:
        clauses.append("m.persona_id = :persona")
        params["persona"] = where.persona_id
    for name, values, column in (("tier", where.tiers, "m.tier"), ("type", where.types, "m.type")):
        if values:
            marks = []
            for i, value in enumerate(values):
                params[f"{name}{i}"] = value
                marks.append(f":{name}{i}")
            clauses.append(f"{column} IN ({', '.join(marks)})")
    for i, tag in enumerate(where.tags):
        params[f"tag{i}"] = tag
        clauses.append(f"EXISTS (SELECT 1 FROM json_each(m.tags) WHERE value = :tag{i})")
    for key, column, op in (
        ("importance_min", "m.importance", ">="),
        ("importance_max", "m.importance", "<="),
        ("occurred_from", "m.occurred_at", ">="),
        ("occurred_to", "m.occurred_at", "<="),
        ("created_from", "m.created_at", ">="),
        ("created_to", "m.created_at", "<="),
    ):
        value = getattr(where, key)
        if value is not None:
            params[key] = value
            clauses.append(f"{column} {op} :{key}")
    return clauses


def _keyword(backend: Backend, text: str, where: SearchFilter, limit: int) -> list[SearchHit]:
    match = fts_query(text)
    if match is None:
        return []
    params: dict[str, Any] = {"match": match, "limit": limit}
    weights = ", ".join(str(w) for w in _WEIGHTS)
    sql = (
        f"SELECT m.id, m.persona_id, m.name, m.content, m.tier, m.occurred_at, "
        f"bm25({SEARCH_TABLE}, {weights}) AS rank "
        f"FROM {SEARCH_TABLE} JOIN memories AS m ON m.rowid = {SEARCH_TABLE}.rowid "
        f"WHERE {SEARCH_TABLE} MATCH :match AND {' AND '.join(_filters(where, params))} "
        f"ORDER BY rank, m.id LIMIT :limit"
    )
    try:
        rows = backend.query(sql, params)
    except QueryError as exc:
        if SEARCH_TABLE in str(exc):
            raise QueryError(
                "full-text search reads the reactive store's index; switch the store on "
                "(pjai flags set use_livestore true)"
            ) from exc
        raise
    return [
        SearchHit(
            r.id, r.persona_id, r.name, r.content, r.tier, r.occurred_at, -r.rank, ("keyword",)
        )
        for r in rows
    ]


def search(
    backend: Backend,
    text: str,
    where: SearchFilter | None = None,
    *,
    limit: int = 10,
    method: Method = "keyword",
    embeddings: Embeddings | None = None,
) -> list[SearchHit]:
    """The memories best matching ``text``, best first."""
    where = where or SearchFilter()
    if limit < 1:
        raise QueryError(f"limit must be at least 1, got {limit}")
    if method == "keyword":
        return _keyword(backend, text, where, limit)
    if embeddings is None:
        raise QueryError("semantic and hybrid search need embeddings (pjai.memory.embeddings)")
    if method == "semantic":
        return embeddings.search(backend, text, where, limit)
    if method == "hybrid":
        return fuse(
            _keyword(backend, text, where, limit * 3),
            embeddings.search(backend, text, where, limit * 3),
            limit,
        )
    raise QueryError(f"unknown search method {method!r}: keyword, semantic or hybrid")


def _normalised(hits: list[SearchHit]) -> dict[str, float]:
    """Scores scaled to 0..1 within their list (the best 1, the worst 0)."""
    if not hits:
        return {}
    high = max(h.score for h in hits)
    low = min(h.score for h in hits)
    spread = high - low
    return {h.memory_id: (h.score - low) / spread if spread else 1.0 for h in hits}


def fuse(
    keyword: list[SearchHit],
    semantic: list[SearchHit],
    limit: int,
    *,
    keyword_weight: float = 0.6,
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
    return [
        SearchHit(
            hits[m].memory_id,
            hits[m].persona_id,
            hits[m].name,
            hits[m].content,
            hits[m].tier,
            hits[m].occurred_at,
            scores[m],
            tuple(sources[m]),
        )
        for m in ordered
    ]
