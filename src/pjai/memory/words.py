"""The words PJai looks for in text: stop words, and what is left of a search text.

Search (:mod:`pjai.memory.search`) and auto-linking (:mod:`pjai.memory.graph`) both
leave out the common English words below.
"""

from __future__ import annotations

import unicodedata

__all__ = ["STOP_WORDS", "search_terms", "words"]

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
    an apostrophe too, comes between words ("O'Brien" is "o" and "brien")."""
    found, word = [], []
    for char in text:
        if unicodedata.category(char)[0] in "LNM":
            word.append(char)
        elif word:
            found.append("".join(word).lower())
            word = []
    if word:
        found.append("".join(word).lower())
    return found


def search_terms(text: str) -> list[str]:
    """The words of ``text`` worth looking for: stop words and single letters dropped,
    unless that leaves none."""
    found = words(text)
    terms = dict.fromkeys(w for w in found if w not in STOP_WORDS and len(w) > 1)
    return list(terms or dict.fromkeys(found))
