"""Search a persona's memories: full-text, semantic, and the two combined.

Keyword search turns the text into an OR of its words (stop words dropped, each word
stemmed) and ranks the memories matching any of them over name, content, summary and
tags (the summary counting half). On the reactive store it reads the FTS5 index
(:mod:`pjai.schema.search`, Porter stemming) and ranks by BM25; with the store off on
PostgreSQL it uses PostgreSQL's text search (English stemming) over each memory's stored,
indexed document, and ranks by ``ts_rank``. Both find the same memories for ordinary
words (the two stemmers differ on a few rare ones), and both ignore the accents of
Latin letters (``cafe`` finds ``Café``; PostgreSQL's documents and queries through
:func:`pjai.schema.search.fold_accents`, the FTS5 tokenizer by removing diacritics);
their scores are on different scales. Both index Chinese, Japanese and Korean text
character by character and look for the pairs of neighbouring characters in the search
text as phrases (:func:`pjai.memory.words.search_terms`).
On an SQLite SQL primary there is no index: switch the store on. With the store off over
several SQL shards, a search runs where the memories are, in each shard's dialect: one
persona's on its shard, everyone's on every shard that holds some, their hits merged by
score (``ts_rank`` weighs a memory's own words alone, so shards' scores compare). An
SQLite shard among them has no index, and the search says so.

A :class:`pjai.schema.MemoryFilter` restricts what a search returns, as it does for
every read of memories (deleted memories only with ``include_deleted``, and then by
keyword alone: deleting a memory drops its vector, and :func:`omitted` says so in words
to show beside the hits). Semantic search compares memory vectors (see
:mod:`pjai.memory.embeddings`). Hybrid ranking takes the
union of both candidate lists and ranks it by a weighted sum of their scores, each list
scaled to 0..1 (keyword 0.6, semantic 0.4 unless a :class:`~pjai.memory.ranking.Tuning`
says otherwise; :mod:`pjai.memory.ranking`).

A search does not count as opening a memory: no ``v1.MemoryAccessed`` is recorded.
"""

from __future__ import annotations

import unicodedata
from typing import Literal

from sqlalchemy import column, func, literal_column, select, table

from pjai.errors import QueryError
from pjai.memory.backend import Backend
from pjai.memory.embeddings import Embeddings
from pjai.memory.hits import HIT_COLUMNS, SearchHit
from pjai.memory.ranking import TUNING, Tuning, fuse, rerank, with_dates, with_neighbours
from pjai.memory.when import time_window
from pjai.memory.words import STOP_WORDS, is_phrase, search_terms
from pjai.schema.expressions import dialect_name
from pjai.schema.limits import INT64_MAX
from pjai.schema.search import (
    POSTGRESQL_DOCUMENT,
    SEARCH_TABLE,
    cut_cjk,
    fold_accents,
    persona_word,
    postgresql_document,
    search_indexed,
)
from pjai.schema.selection import MemoryFilter, memory_conditions
from pjai.schema.spread import spread
from pjai.schema.tables import memories
from pjai.schema.types import AnySelect
from pjai.store.query import Row

__all__ = [
    "HYBRID_DEPTH",
    "MAX_LIMIT",
    "STOP_WORDS",
    "TUNING",
    "Method",
    "SearchFilter",
    "SearchHit",
    "Tuning",
    "fts_query",
    "fuse",
    "omitted",
    "rerank",
    "search",
    "with_dates",
    "with_neighbours",
]

Method = Literal["keyword", "semantic", "hybrid"]

HYBRID_DEPTH = 3
"""Hybrid search fuses the best ``limit * HYBRID_DEPTH`` of each list."""

MAX_LIMIT = INT64_MAX // HYBRID_DEPTH
"""The largest ``limit`` a search takes: SQL reads up to ``limit * HYBRID_DEPTH`` rows,
a number SQLite and PostgreSQL take only up to a 64-bit integer."""


SearchFilter = MemoryFilter
"""What a search may return: a :class:`pjai.schema.MemoryFilter` (deleted memories only
with ``include_deleted``)."""


def omitted(method: Method, where: SearchFilter) -> str | None:
    """What a search by ``method`` leaves out of what ``where`` lets in, as a sentence to
    show beside its hits, or ``None``. Deleting a memory drops its vector on purpose (it
    leaves nothing of it in the vector file), so with ``include_deleted`` semantic search
    finds no deleted memory and hybrid search ranks them by their words alone."""
    if not where.include_deleted or method == "keyword":
        return None
    if method == "semantic":
        return (
            "deleted memories are not searched by meaning (their vectors are dropped): "
            "search by keyword to find them"
        )
    return "deleted memories are ranked by their words alone (their vectors are dropped)"


def fts_query(text: str) -> str | None:
    """The FTS5 query for ``text``: its words OR-ed together, or ``None`` if it has none."""
    return _fts5_match(search_terms(text)) or None


def _fts5_match(terms: list[str], persona_id: str | None = None) -> str:
    """Any of ``terms`` in a memory's words; with ``persona_id``, only in that persona's
    memories, so that FTS5 reads the persona's share of a common word's rows, not all.
    No term is a persona's word (:func:`pjai.schema.search.persona_word`)."""
    words = " OR ".join(f'"{cut_cjk(term)}"' for term in terms)  # a pair: a phrase
    if persona_id is None:
        return words
    return f'persona : "{persona_word(persona_id)}" AND ({words})'


NARROW_SHARE, NARROW_MAX = 8, 20_000
"""A search of one persona on the store asks the index for the persona's word too when
the persona holds at most one memory in ``NARROW_SHARE`` and at most ``NARROW_MAX``:
FTS5 then reads the persona's share of each word's rows instead of all of them. A
persona holding more gains little, and BM25 would read its word's whole list (its
rarity) on each search; counting stops past the bound."""


def _narrowed(backend: Backend, persona_id: str | None) -> str | None:
    """The persona whose word narrows the FTS5 match, if it holds a small share of the
    memories (:data:`NARROW_SHARE`, :data:`NARROW_MAX`); counting stops past that."""
    if persona_id is None:
        return None
    # The largest rowid stands for the count of memories (0 before the first: a LIMIT
    # of NULL is an error).
    count = f"coalesce((SELECT max(rowid) FROM {memories.name}), 0)"
    share = f"min({count} / {NARROW_SHARE}, {NARROW_MAX})"
    (found,) = backend.query(
        f"SELECT {share} AS share, (SELECT count(*) FROM (SELECT 1 FROM {memories.name} "
        f"WHERE persona_id = :persona_id LIMIT {share} + 1)) AS held",
        {"persona_id": persona_id},
    )
    return persona_id if found.share is not None and found.held <= found.share else None


def _fts5_query(
    terms: list[str],
    where: MemoryFilter,
    limit: int,
    tuning: Tuning = TUNING,
    narrow: str | None = None,
) -> AnySelect:
    """Keyword search on the store's FTS5 index, ranked by BM25 (column weights: name,
    content, summary, tags), among the memories of persona ``narrow`` in the index."""
    index = table(SEARCH_TABLE, column("rowid"))
    weights = (1.0, 1.0, float(tuning.summary_weight), 1.0, 0.0)  # the persona's word: 0
    score = -func.bm25(literal_column(SEARCH_TABLE), *(literal_column(str(w)) for w in weights))
    match = _fts5_match(terms, narrow)
    return (
        select(*HIT_COLUMNS, score.label("score"))
        .select_from(memories.join(index, index.c.rowid == literal_column("memories.rowid")))
        .where(literal_column(SEARCH_TABLE).op("MATCH")(match), *memory_conditions(where))
        .order_by(literal_column("score").desc(), memories.c.id)
        .limit(limit)
    )


def _postgresql_query(
    terms: list[str], where: MemoryFilter, limit: int, tuning: Tuning = TUNING
) -> AnySelect:
    """Keyword search with PostgreSQL's text search.

    The English configuration stems words and drops its stop words, as the store's
    Porter tokenizer and :data:`STOP_WORDS` do; its documents are stored and indexed
    (:mod:`pjai.schema.search`). A query made only of stop words is matched word for
    word (the ``simple`` configuration), against documents computed from the rows.
    Name, content and tags weigh fully (A), the summary as ``tuning`` says (B).
    """
    stop_words_only = all(term in STOP_WORDS for term in terms)
    config = "simple" if stop_words_only else "english"
    document = (
        postgresql_document(config)
        if stop_words_only
        else literal_column(f"{memories.name}.{POSTGRESQL_DOCUMENT}")
    )
    # Terms are letters, digits and marks only (search_terms): quoting each is enough.
    wanted = func.to_tsquery(
        literal_column(f"'{config}'::regconfig"),
        " | ".join(
            f"('{term[0]}' <-> '{term[1]}')" if is_phrase(term) else f"'{fold_accents(term)}'"
            for term in terms
        ),
    )
    summary = float(tuning.summary_weight)  # a float: safe to write into the SQL
    score = func.ts_rank(
        literal_column(f"'{{0.1, 0.2, {summary}, 1.0}}'::float4[]"), document, wanted
    ).label("score")
    query = select(*HIT_COLUMNS, score).where(*memory_conditions(where), document.op("@@")(wanted))
    # ts_rank weighs a memory's own words alone: scores from several shards compare.
    return spread(query, order_by=(score.desc(), memories.c.id), limit=limit)


_NO_INDEX = (
    "full-text search on SQLite reads the reactive store's index, and an SQLite SQL "
    "primary has none; switch the store on (pjai flags set use_livestore true), and take "
    "PJAI_USE_LIVESTORE out of the environment if it is false there (it overrides the flag)"
)


def _searched_in(backend: Backend, persona_id: str | None) -> list[Row]:
    """The databases holding memories of ``persona_id`` (or of anyone): the store's
    state, or with the store off each SQL shard that holds some; each row with the
    dialect's ``name`` and whether it keeps a full-text index (``indexed``)."""
    held = select(memories.c.id)
    if persona_id is not None:
        held = held.where(memories.c.persona_id == persona_id)
    asked = select(dialect_name().label("name"), search_indexed().label("indexed"))
    return backend.query(spread(asked.where(held.exists())))


def _keyword(
    backend: Backend, text: str, where: MemoryFilter, limit: int, tuning: Tuning
) -> list[SearchHit]:
    terms = search_terms(text)
    if not terms:
        return []
    # Asked of the databases that hold the memories, not of any one: a directory's
    # shards may differ in dialect, and only the store's SQLite keeps an index.
    databases = _searched_in(backend, where.persona_id)
    if not databases:
        return []
    if not all(d.indexed for d in databases):
        raise QueryError(_NO_INDEX)
    if all(d.name == "postgresql" for d in databases):
        query = _postgresql_query(terms, where, limit, tuning)
    else:  # the store: SQLite with an index is the store's state alone
        query = _fts5_query(terms, where, limit, tuning, _narrowed(backend, where.persona_id))
    rows = backend.query(query)
    return [SearchHit.from_row(r, float(r.score), "keyword") for r in rows]


def search(
    backend: Backend,
    text: str,
    where: SearchFilter | None = None,
    *,
    limit: int = 10,
    method: Method = "keyword",
    embeddings: Embeddings | None = None,
    tuning: Tuning = TUNING,
) -> list[SearchHit]:
    """The memories best matching ``text``, best first."""
    where = where or SearchFilter()
    if limit < 1:
        raise QueryError(f"limit must be at least 1, got {limit}")
    if limit > MAX_LIMIT:
        raise QueryError(f"limit must be at most {MAX_LIMIT}, got {limit}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise QueryError(
            f"the search text is not valid Unicode (a lone surrogate at position {exc.start})"
        ) from None
    if not any(unicodedata.category(c)[0] in "LNS" for c in text):
        # Blank, or punctuation only: no letter, digit or symbol to look for. Keyword
        # search finds nothing for it; semantic and hybrid would rank every memory.
        return []
    expand = tuning.neighbour_weight > 0
    window = time_window(text) if tuning.date_weight > 0 else None
    deep = expand or window is not None
    depth = limit * HYBRID_DEPTH
    if method == "keyword":
        if not deep:
            return _keyword(backend, text, where, limit, tuning)
        found = _keyword(backend, text, where, depth, tuning)
        return rerank(backend, found, where, limit, tuning, window)
    if embeddings is None:
        raise QueryError("semantic and hybrid search need embeddings (pjai.memory.embeddings)")
    if method == "semantic":
        return embeddings.search(backend, text, where, limit)
    if method == "hybrid":
        fused = fuse(
            _keyword(backend, text, where, depth, tuning),
            embeddings.search(backend, text, where, depth),
            depth if deep else limit,
            keyword_weight=tuning.keyword_weight,
        )
        if not deep:
            return fused
        return rerank(backend, fused, where, limit, tuning, window)
    raise QueryError(f"unknown search method {method!r}: keyword, semantic or hybrid")
