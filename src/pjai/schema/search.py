"""The full-text index of memories: an FTS5 table the reactive store keeps current.

It is derived from ``memories`` by triggers, like an index: every insert, delete and
change of name, content, summary or tags updates it, whether it comes from a commit, a
rebase or a rebuild. It holds no text of its own (``content=''``), so compressed cold
memories are indexed from their inflated text without storing it twice. Words are
stemmed (Porter) and diacritics folded.
"""

from __future__ import annotations

__all__ = ["SEARCH_CREATE", "SEARCH_FILL", "SEARCH_TABLE"]

SEARCH_TABLE = "memories_fts"

_COLUMNS = "name, content, summary, tags"
_VALUES = "{r}.rowid, {r}.name, pjai_text({r}.content), {r}.summary, {r}.tags"

SEARCH_CREATE = [
    f"CREATE VIRTUAL TABLE {SEARCH_TABLE} USING fts5({_COLUMNS}, content='', "
    "contentless_delete=1, tokenize='porter unicode61 remove_diacritics 2')",
    f"CREATE TRIGGER {SEARCH_TABLE}_insert AFTER INSERT ON memories BEGIN "
    f"INSERT INTO {SEARCH_TABLE} (rowid, {_COLUMNS}) VALUES ({_VALUES.format(r='new')}); END",
    f"CREATE TRIGGER {SEARCH_TABLE}_delete AFTER DELETE ON memories BEGIN "
    f"DELETE FROM {SEARCH_TABLE} WHERE rowid = old.rowid; END",
    # Compressing or inflating content (a tier change) leaves the text, and the index, as is.
    f"CREATE TRIGGER {SEARCH_TABLE}_update AFTER UPDATE OF name, content, summary, tags "
    "ON memories WHEN new.name IS NOT old.name OR new.summary IS NOT old.summary "
    "OR new.tags IS NOT old.tags OR pjai_text(new.content) IS NOT pjai_text(old.content) "
    f"BEGIN DELETE FROM {SEARCH_TABLE} WHERE rowid = old.rowid; "
    f"INSERT INTO {SEARCH_TABLE} (rowid, {_COLUMNS}) VALUES ({_VALUES.format(r='new')}); END",
]
"""Statements that create the index and its triggers (the store runs them)."""

SEARCH_FILL = [
    f"INSERT INTO {SEARCH_TABLE} (rowid, {_COLUMNS}) "
    f"SELECT {_VALUES.format(r='memories')} FROM memories"
]
"""Statements that index existing rows, after a bulk rebuild created the index late."""
