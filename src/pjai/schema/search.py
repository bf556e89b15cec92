"""The full-text index of memories: an FTS5 table the reactive store keeps current.

It is derived from ``memories`` like an index: every insert, delete and change of name,
content, summary or tags updates it, whether it comes from a commit, a rebase or a
rebuild. It holds no text of its own (``content=''``), so compressed cold memories are
indexed from their inflated text without storing it twice. Words are runs of letters,
digits and marks; they are stemmed (Porter) and diacritics folded.

Triggers on ``memories`` only note which rows changed, in ``memories_fts_dirty``; the
store runs :data:`SEARCH_FLUSH` before each commit, which re-indexes the noted rows in
one statement. Writing to FTS5 from a trigger is about three times as slow: FTS5 flushes
its pending terms at every nested statement's savepoint, so each row became its own
segment. Each noted row records whether the index held it when the transaction first
touched it (``indexed``): an inserted row's first touch is its insert, so it is only
added; a changed or deleted row is taken out first.
"""

from __future__ import annotations

__all__ = ["SEARCH_CREATE", "SEARCH_DIRTY", "SEARCH_FILL", "SEARCH_FLUSH", "SEARCH_TABLE"]

SEARCH_TABLE = "memories_fts"
SEARCH_DIRTY = "memories_fts_dirty"

_COLUMNS = "name, content, summary, tags"
_VALUES = "{r}.rowid, {r}.name, pjai_text({r}.content), {r}.summary, {r}.tags"

SEARCH_CREATE = [
    f"CREATE VIRTUAL TABLE {SEARCH_TABLE} USING fts5({_COLUMNS}, content='', "
    # Marks (M*) are part of words: a Devanagari or Tamil word keeps its vowel signs.
    "contentless_delete=1, "
    "tokenize='porter unicode61 remove_diacritics 2 categories ''L* N* Co M*''')",
    f"CREATE TABLE {SEARCH_DIRTY} (rowid INTEGER PRIMARY KEY, indexed INTEGER NOT NULL)",
    f"CREATE TRIGGER {SEARCH_TABLE}_insert AFTER INSERT ON memories BEGIN "
    f"INSERT OR IGNORE INTO {SEARCH_DIRTY} VALUES (new.rowid, 0); END",
    f"CREATE TRIGGER {SEARCH_TABLE}_delete AFTER DELETE ON memories BEGIN "
    f"INSERT OR IGNORE INTO {SEARCH_DIRTY} VALUES (old.rowid, 1); END",
    # Compressing or inflating content (a tier change) leaves the text, and the index, as is.
    f"CREATE TRIGGER {SEARCH_TABLE}_update AFTER UPDATE OF name, content, summary, tags "
    "ON memories WHEN new.name IS NOT old.name OR new.summary IS NOT old.summary "
    "OR new.tags IS NOT old.tags OR pjai_text(new.content) IS NOT pjai_text(old.content) "
    f"BEGIN INSERT OR IGNORE INTO {SEARCH_DIRTY} VALUES (old.rowid, 1); END",
]
"""Statements that create the index, its list of changed rows and the triggers."""

SEARCH_FLUSH = [
    f"DELETE FROM {SEARCH_TABLE} WHERE rowid IN (SELECT rowid FROM {SEARCH_DIRTY} WHERE indexed)",
    f"INSERT INTO {SEARCH_TABLE} (rowid, {_COLUMNS}) SELECT {_VALUES.format(r='memories')} "
    f"FROM {SEARCH_DIRTY} JOIN memories ON memories.rowid = {SEARCH_DIRTY}.rowid",
    f"DELETE FROM {SEARCH_DIRTY}",
]
"""Statements that bring the index up to date with the rows noted since the last flush."""

SEARCH_FILL = [
    f"INSERT INTO {SEARCH_TABLE} (rowid, {_COLUMNS}) "
    f"SELECT {_VALUES.format(r='memories')} FROM memories"
]
"""Statements that index existing rows, after a bulk rebuild created the index late."""
