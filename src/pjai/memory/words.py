"""The words PJai looks for in text: stop words, and what is left of a search text.

Search (:mod:`pjai.memory.search`) and auto-linking (:mod:`pjai.memory.graph`) both
leave out the common English words below.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

from pjai.schema.search import CJK_PATTERN, cut_cjk

__all__ = ["MAX_TERMS", "STOP_WORDS", "bigrams", "is_phrase", "pieces", "search_terms", "words"]

_CJK = re.compile(CJK_PATTERN)
MAX_TERMS = 1_000
"""A search looks for the first this many terms of its text: PostgreSQL cannot parse a
query of some 19,000 (a long text of Chinese characters gives one term per character)."""
_CJK_RUN = re.compile(f"({CJK_PATTERN}+)")

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
        "don",  # with "s" and "t": PostgreSQL's English stop words, which this list holds
        "s",
        "t",
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


def words(text: str) -> list[str]:
    """The words of ``text``, lower case, as the full-text indexes cut them: runs of
    letters, digits and marks (a Devanagari word keeps its vowel signs); anything else,
    an apostrophe too, comes between words ("O'Brien" is "o" and "brien"). A Chinese,
    Japanese or Korean character is a word of its own: the text is cut as the index cuts
    it (:func:`pjai.schema.search.cut_cjk`)."""
    found, word = [], []
    for char in cut_cjk(text) or "":
        if unicodedata.category(char)[0] in "LNM":
            word.append(char)
        elif word:
            found.append("".join(word).lower())
            word = []
    if word:
        found.append("".join(word).lower())
    return found


def search_terms(text: str) -> list[str]:
    """What to look for in ``text``: its words, stop words and single letters dropped
    unless that leaves none. A run of Chinese, Japanese or Korean characters, which has
    no spaces between its words, stands for the pairs of neighbours it holds (``東京都``:
    ``東京``, ``京都``), or for its one character; each pair is a phrase of two words.
    At most :data:`MAX_TERMS`, the first."""
    found: list[str] = []
    for piece, cjk in pieces(text):
        found.extend(bigrams(piece) if cjk else words(piece))
    terms = dict.fromkeys(w for w in found if w not in STOP_WORDS and (len(w) > 1 or _CJK.match(w)))
    return list(terms or dict.fromkeys(found))[:MAX_TERMS]


def pieces(text: str) -> Iterator[tuple[str, bool]]:
    """``text`` in pieces, each with whether it is a run of Chinese, Japanese or Korean
    characters (:data:`pjai.schema.search.CJK_PATTERN`) or lies between such runs; in
    NFC, as the index has it (decomposed Hangul or kana are composed)."""
    if text.isascii():
        yield text, False
        return
    for i, piece in enumerate(_CJK_RUN.split(unicodedata.normalize("NFC", text))):
        if piece:
            yield piece, i % 2 == 1


def bigrams(run: str) -> list[str]:
    """The pairs of neighbouring characters of ``run`` (``東京都``: ``東京``, ``京都``), or
    its one character."""
    return [run[i : i + 2] for i in range(max(len(run) - 1, 1))]


def is_phrase(term: str) -> bool:
    """Whether a search term from :func:`search_terms` is a pair of Chinese, Japanese or
    Korean characters, to be found as a phrase of two words."""
    return len(term) == 2 and _CJK.match(term) is not None
