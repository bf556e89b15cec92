"""The memory graph: links as edges, neighbours, components, auto-linking, decay.

Links are directed and typed (``references``, ``similar``, ``related``, ``causal``,
``temporal``) with a strength, a confidence and a decay rate. Traversal ignores
direction: a neighbour is any memory one link away, either way. Deleted memories are
left out of every answer.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass

from sqlalchemy import Integer, and_, case, func, literal, or_, select

from pjai.errors import QueryError
from pjai.memory.backend import Backend
from pjai.memory.embeddings import Embeddings
from pjai.memory.words import STOP_WORDS, bigrams, is_phrase, pieces
from pjai.schema import MemoryLinked, MemoryLinksDecayed, MemoryUnlinked
from pjai.schema.event import Event
from pjai.schema.selection import MemoryFilter, memory_conditions
from pjai.schema.tables import memories, memory_links
from pjai.schema.types import AnySelect, CodePointString

__all__ = ["Neighbour", "auto_link", "components", "decay_links", "neighbours", "similarity"]


@dataclass(frozen=True, slots=True)
class Neighbour:
    """A memory reachable from another, and in how many links."""

    memory_id: str
    depth: int


def neighbours(
    backend: Backend, memory_id: str, *, depth: int = 1, min_strength: float = 0.0
) -> list[Neighbour]:
    """Memories within ``depth`` links of ``memory_id`` (links at least ``min_strength``)."""
    if depth < 1:
        raise QueryError(f"depth must be at least 1, got {depth}")
    if math.isnan(min_strength):
        # Every comparison with NaN is false: the walk would silently find nothing.
        raise QueryError(f"min_strength must be a number, got {min_strength}")
    return [Neighbour(r.id, r.depth) for r in backend.query(_walk(memory_id, depth, min_strength))]


def _walk(memory_id: str, depth: int, min_strength: float) -> AnySelect:
    """Breadth-first over links either way, each step landing on a live memory only.

    A deleted memory connects nothing (as in :func:`components`), though its links stay
    for when it is restored.
    """
    link, reached = memory_links.alias("l"), memories.alias("m")
    # The start has the type of the ids it is joined with: on PostgreSQL, their collation.
    start = literal(memory_id, CodePointString).label("id")
    walk = select(start, literal(0, Integer).label("depth")).cte("walk", recursive=True)
    other = case((link.c.source_id == walk.c.id, link.c.target_id), else_=link.c.source_id)
    step = (
        select(other, walk.c.depth + 1)
        .select_from(
            walk.join(link, or_(link.c.source_id == walk.c.id, link.c.target_id == walk.c.id)).join(
                reached, and_(reached.c.id == other, reached.c.deleted_at.is_(None))
            )
        )
        .where(walk.c.depth < depth, link.c.strength >= min_strength)
    )
    walk = walk.union(step)
    nearest = func.min(walk.c.depth).label("depth")
    return (
        select(walk.c.id, nearest)
        .where(walk.c.id != memory_id)
        .group_by(walk.c.id)
        .order_by(nearest, walk.c.id)
    )


def components(backend: Backend, persona_id: str) -> list[set[str]]:
    """The persona's connected groups of linked memories, largest first."""
    source, target = memories.alias("s"), memories.alias("t")
    link = memory_links.c
    rows = backend.query(
        select(link.source_id, link.target_id)
        .join(source, and_(source.c.id == link.source_id, source.c.deleted_at.is_(None)))
        .join(target, and_(target.c.id == link.target_id, target.c.deleted_at.is_(None)))
        .where(link.persona_id == persona_id)
    )
    parent: dict[str, str] = {}

    def root(node: str) -> str:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for row in rows:
        a, b = root(row.source_id), root(row.target_id)
        if a != b:
            parent[max(a, b)] = min(a, b)
    groups: dict[str, set[str]] = defaultdict(set)
    for node in parent:
        groups[root(node)].add(node)
    return sorted(groups.values(), key=lambda g: (-len(g), min(g)))


_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def _terms(text: str) -> set[str]:
    """The words of ``text`` that linking compares: of three letters or more, no stop
    words; a run of Chinese, Japanese or Korean characters gives its pairs of neighbours,
    as search does (:func:`pjai.memory.words.search_terms`)."""
    found: set[str] = set()
    for piece, cjk in pieces(text):
        if cjk:
            found.update(bigrams(piece))
        else:
            found.update(m.lower() for m in _WORD.findall(piece))
    return {w for w in found if (len(w) > 2 or is_phrase(w)) and w not in STOP_WORDS}


def similarity(a: set[str], b: set[str]) -> float:
    """Term overlap of two texts' word sets (Jaccard), 0..1."""
    return len(a & b) / len(a | b) if a and b else 0.0


def auto_link(
    backend: Backend,
    persona_id: str,
    *,
    threshold: float | None = None,
    per_memory: int = 3,
    max_document_share: float = 0.2,
    embeddings: Embeddings | None = None,
    max_postings: int | None = None,
    candidates_per_link: int | None = None,
) -> list[Event]:
    """``similar`` links between a persona's memories that are alike enough.

    With ``embeddings``, alike means cosine similarity of their vectors at or above
    ``threshold`` (default 0.6). Without, it means word overlap: candidates share at
    least one word used by no more than ``max_document_share`` of the memories and no
    more than ``max_postings`` (default :data:`MAX_POSTINGS`), and their Jaccard overlap
    is at or above ``threshold`` (default 0.25); each memory is compared whole with its
    ``candidates_per_link`` times ``per_memory`` closest candidates by the words they share
    (default :data:`CANDIDATES_PER_LINK`; ``0`` for no bound on either, which compares
    every candidate). Each memory gets its ``per_memory`` best partners; strength and
    confidence are the similarity. Pairs already linked either way are skipped.
    Returns the events (not committed).
    """
    if threshold is not None and not 0 <= threshold <= 1:  # NaN too
        raise QueryError(f"the threshold is a similarity from 0 to 1, got {threshold}")
    linked = {
        frozenset((r.source_id, r.target_id))
        for r in backend.query(
            select(memory_links.c.source_id, memory_links.c.target_id).where(
                memory_links.c.persona_id == persona_id
            )
        )
    }
    if embeddings is not None:
        pairs = embeddings.similar_pairs(
            backend,
            persona_id,
            threshold=0.6 if threshold is None else threshold,
            per_memory=per_memory,
        )
    else:
        pairs = _overlapping_pairs(
            backend,
            persona_id,
            threshold=0.25 if threshold is None else threshold,
            per_memory=per_memory,
            max_document_share=max_document_share,
            max_postings=MAX_POSTINGS if max_postings is None else max_postings,
            candidates=CANDIDATES_PER_LINK if candidates_per_link is None else candidates_per_link,
        )
    events: list[Event] = []
    for source, target, value in pairs:
        pair = frozenset((source, target))
        if pair in linked:
            continue
        linked.add(pair)
        strength = round(min(1.0, max(0.0, value)), 4)
        events.append(
            MemoryLinked(
                persona_id=persona_id,
                source_id=source,
                target_id=target,
                kind="similar",
                strength=strength,
                confidence=strength,
                decay_rate=0.01,
            )
        )
    return events


MAX_POSTINGS = 200
"""The most memories a word may be in to make two of them candidates for a link."""
CANDIDATES_PER_LINK = 8
"""How many candidates, by the rarer words they share, a memory is compared with whole
for each link it may get."""


def _overlapping_pairs(
    backend: Backend,
    persona_id: str,
    *,
    threshold: float,
    per_memory: int,
    max_document_share: float,
    max_postings: int,
    candidates: int,
) -> list[tuple[str, str, float]]:
    c = memories.c
    rows = backend.query(
        select(c.id, c.name, c.content, c.summary)
        .where(*memory_conditions(MemoryFilter(persona_id=persona_id)))
        .order_by(c.id)
    )
    terms = {r.id: _terms(f"{r.name} {r.content} {r.summary}") for r in rows}
    frequency: Counter[str] = Counter(t for words in terms.values() for t in words)
    # A word in many memories says little of any two; past MAX_POSTINGS it is not
    # followed at all, so that the work grows with the memories, not their pairs.
    cap = max(2, int(max_document_share * len(terms)))
    if max_postings:
        cap = max(2, min(max_postings, cap))
    postings: dict[str, list[str]] = defaultdict(list)
    for memory_id, words in terms.items():
        for word in words:
            if frequency[word] <= cap:
                postings[word].append(memory_id)
    pairs: dict[tuple[str, str], float] = {}
    for memory_id, words in terms.items():
        shared: Counter[str] = Counter(
            other for word in words for other in postings.get(word, ()) if other != memory_id
        )
        # Those closest by the rarer words they share (their overlap if those were all
        # the words) are compared whole.
        size = len(words)
        closest = sorted(
            shared.items(),
            key=lambda item: (-item[1] / (size + len(terms[item[0]]) - item[1]), item[0]),
        )
        scored = sorted(
            (
                (similarity(words, terms[other]), other)
                for other, _ in (closest[: candidates * per_memory] if candidates else closest)
            ),
            key=lambda pair: (-pair[0], pair[1]),
        )
        for overlap, other in scored[:per_memory]:
            if overlap >= threshold:
                pairs[(min(memory_id, other), max(memory_id, other))] = overlap
    return [(a, b, overlap) for (a, b), overlap in sorted(pairs.items())]


def decay_links(
    backend: Backend, persona_id: str, days: float, *, min_strength: float = 0.05
) -> list[Event]:
    """The events of a decay run of ``days``: weak links removed, the rest decayed."""
    link = memory_links.c
    rows = backend.query(
        select(link.source_id, link.target_id, link.kind, link.strength, link.decay_rate).where(
            link.persona_id == persona_id
        )
    )
    events: list[Event] = [
        MemoryUnlinked(
            persona_id=persona_id, source_id=r.source_id, target_id=r.target_id, kind=r.kind
        )
        for r in rows
        if r.strength * math.exp(-r.decay_rate * days) < min_strength
    ]
    if len(events) < len(rows):
        events.append(MemoryLinksDecayed(persona_id=persona_id, days=days))
    return events
