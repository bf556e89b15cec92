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

On PostgreSQL (the SQL primary, read with the store off) each memory keeps its text-search
document in ``search_document`` (a ``tsvector``, English stemming, Latin accents folded,
name, content and tags weighted A and the summary B), set by a trigger whenever the row
is inserted or its name, content, summary or tags are written, and indexed (GIN). The
column is PostgreSQL's alone: ``pjai.schema.tables`` does not declare it, the store has
FTS5 instead, and drift checks leave it out (:data:`POSTGRESQL_SEARCH_OBJECTS`).
"""

from __future__ import annotations

import unicodedata
from typing import Any

from sqlalchemy import ColumnElement, Text, case, cast, func, literal_column
from sqlalchemy.dialects.postgresql import psycopg

__all__ = [
    "POSTGRESQL_DOCUMENT",
    "POSTGRESQL_SEARCH_CREATE",
    "POSTGRESQL_SEARCH_DROP",
    "POSTGRESQL_SEARCH_FUNCTION",
    "POSTGRESQL_SEARCH_OBJECTS",
    "SEARCH_CREATE",
    "SEARCH_DIRTY",
    "SEARCH_FILL",
    "SEARCH_FLUSH",
    "SEARCH_TABLE",
    "fold_accents",
    "postgresql_document",
]

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


def _accents() -> tuple[str, str]:
    """The Latin letters with an accent (U+00C0 to U+024F), and each one's base letter."""
    accented = [chr(code) for code in range(0xC0, 0x250)]
    bases = [unicodedata.normalize("NFD", char)[0] for char in accented]
    kept = [(a, b) for a, b in zip(accented, bases, strict=True) if a != b and b.isascii()]
    return "".join(a for a, _ in kept), "".join(b for _, b in kept)


_ACCENTED, _BASES = _accents()
_FOLD = str.maketrans(_ACCENTED, _BASES)


def fold_accents(text: str) -> str:
    """``text`` with its accented Latin letters as their base letters, as PostgreSQL's
    search document has them (``Café`` -> ``Cafe``)."""
    return text.translate(_FOLD)


def postgresql_document(config: str, row: str = "memories") -> ColumnElement[Any]:
    """The text-search document of a memory, ``row`` naming the row (``memories`` in a
    query, ``NEW`` in a trigger), under the text search configuration ``config``."""

    def part(column: str, weight: str) -> ColumnElement[Any]:
        value: Any = literal_column(f"{row}.{column}")
        if column == "tags":
            value = cast(value, Text)
        folded = func.translate(
            value, literal_column(f"'{_ACCENTED}'"), literal_column(f"'{_BASES}'")
        )
        # Only text with a non-ASCII letter can have an accent to fold: ``translate``
        # over the accent table costs about 0.2 ms a memory, most of a document's cost.
        plain = case((func.octet_length(value) == func.length(value), value), else_=folded)
        vector = func.to_tsvector(literal_column(f"'{config}'::regconfig"), plain)
        return func.setweight(vector, literal_column(f"'{weight}'"))

    return (
        part("name", "A")
        .op("||")(part("content", "A"))
        .op("||")(part("summary", "B"))
        .op("||")(part("tags", "A"))
    )


def _sql(expression: ColumnElement[Any]) -> str:
    return str(expression.compile(dialect=psycopg.dialect()))  # type: ignore[no-untyped-call]


POSTGRESQL_DOCUMENT = "search_document"
"""PostgreSQL's column of each memory's text-search document (English configuration)."""

POSTGRESQL_SEARCH_FUNCTION = (
    f"BEGIN NEW.{POSTGRESQL_DOCUMENT} := {_sql(postgresql_document('english', 'NEW'))}; "
    "RETURN NEW; END"
)
"""The body of the trigger function that sets ``search_document``."""

_INDEX = f"ix_memories_{POSTGRESQL_DOCUMENT}"
_TRIGGER = f"memories_{POSTGRESQL_DOCUMENT}"
_FUNCTION = f"pjai_memories_{POSTGRESQL_DOCUMENT}"

POSTGRESQL_SEARCH_OBJECTS = frozenset({("column", POSTGRESQL_DOCUMENT), ("index", _INDEX)})
"""What the search document adds to PostgreSQL's ``memories`` beside the declared tables,
as (kind, name): drift checks leave these out."""

POSTGRESQL_SEARCH_CREATE = [
    f"ALTER TABLE memories ADD COLUMN {POSTGRESQL_DOCUMENT} tsvector",
    f"CREATE FUNCTION {_FUNCTION}() RETURNS trigger LANGUAGE plpgsql "
    f"AS $$ {POSTGRESQL_SEARCH_FUNCTION} $$",
    # Written columns, not changed values: an update that sets only importance, access
    # or tier (decay, ranking, optimizing) leaves the document as it is.
    f"CREATE TRIGGER {_TRIGGER} BEFORE INSERT OR UPDATE OF name, content, summary, tags "
    f"ON memories FOR EACH ROW EXECUTE FUNCTION {_FUNCTION}()",
    f"UPDATE memories SET {POSTGRESQL_DOCUMENT} = {_sql(postgresql_document('english'))}",
    f"CREATE INDEX {_INDEX} ON memories USING gin ({POSTGRESQL_DOCUMENT})",
]
"""Statements that add the search document to PostgreSQL's ``memories``, filled."""

POSTGRESQL_SEARCH_DROP = [
    f"DROP INDEX {_INDEX}",
    f"DROP TRIGGER {_TRIGGER} ON memories",
    f"DROP FUNCTION {_FUNCTION}()",
    f"ALTER TABLE memories DROP COLUMN {POSTGRESQL_DOCUMENT}",
]
"""Statements that take the search document out again."""
