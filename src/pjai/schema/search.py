"""The full-text index of memories: an FTS5 table the reactive store keeps current.

It is derived from ``memories`` like an index: every insert, delete and change of name,
content, summary or tags updates it, whether it comes from a commit, a rebase or a
rebuild. It holds no text of its own (``content=''``), so compressed cold memories are
indexed from their inflated text without storing it twice. Words are runs of letters,
digits and marks; they are stemmed (Porter) and diacritics folded. Chinese, Japanese and
Korean text has no spaces between words: each of its characters is indexed as a word of
its own (:func:`cut_cjk`), and a search looks for the pairs of characters its text holds
as phrases (the usual bigram search), so that a word inside a sentence is found.

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
is inserted or its name, content, summary or tags change, and indexed (GIN). The
column is PostgreSQL's alone: ``pjai.schema.tables`` does not declare it, the store has
FTS5 instead, and drift checks leave it out (:data:`POSTGRESQL_SEARCH_OBJECTS`).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from sqlalchemy import Boolean, ColumnElement, Text, cast, func, literal_column
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from pjai.schema.tables import memories

__all__ = [
    "CJK_PATTERN",
    "POSTGRESQL_CJK_UPDATE",
    "POSTGRESQL_DOCUMENT",
    "POSTGRESQL_FUNCTIONS",
    "POSTGRESQL_SEARCH_CREATE",
    "POSTGRESQL_SEARCH_DROP",
    "POSTGRESQL_SEARCH_OBJECTS",
    "SEARCH_CREATE",
    "SEARCH_DIRTY",
    "SEARCH_FILL",
    "SEARCH_FLUSH",
    "SEARCH_TABLE",
    "cut_cjk",
    "fold_accents",
    "persona_word",
    "postgresql_document",
    "search_indexed",
]

_CJK_RANGES = (
    (0x3005, 0x3007),  # iteration and closing marks, the ideographic zero
    (0x3041, 0x3096),  # Hiragana (not its voicing marks, which NFC joins to letters)
    (0x309D, 0x309F),  # Hiragana iteration marks, yori
    (0x30A1, 0x30FA),  # Katakana (not the double hyphen nor the middle dot ・)
    (0x30FC, 0x30FF),  # the prolonged sound mark ー, Katakana iteration marks, koto
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK Unified Ideographs Extension A
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0xAC00, 0xD7AF),  # Hangul syllables
    (0xF900, 0xFAFF),  # CJK Compatibility Ideographs
    (0xFF66, 0xFF9F),  # halfwidth Katakana
    (0x20000, 0x323AF),  # CJK Unified Ideographs Extensions B to H
)
"""The characters of scripts written without spaces between words that PJai indexes one
by one: Han ideographs, Kana and Hangul syllables (letters only: punctuation such as
``・`` comes between words, as elsewhere)."""

CJK_PATTERN = "[" + "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in _CJK_RANGES) + "]"
"""A regular expression (Python's) for one character of :data:`_CJK_RANGES`."""
_CJK_RUN = re.compile(CJK_PATTERN + "+")


def _escape(code: int) -> str:
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


_POSTGRESQL_CJK = "[" + "".join(f"{_escape(lo)}-{_escape(hi)}" for lo, hi in _CJK_RANGES) + "]"
""":data:`CJK_PATTERN` in PostgreSQL's syntax, with escapes (any server encoding reads it)."""


def cut_cjk(text: str | None) -> str | None:
    """``text`` in NFC with a space on each side of its Chinese, Japanese and Korean
    characters, so that the index takes each as a word (``東京タワー`` ->
    `` 東  京  タ  ワ  ー ``; decomposed Hangul or kana are composed first)."""
    if text is None or text.isascii():
        return text
    return _CJK_RUN.sub(_spaced, unicodedata.normalize("NFC", text))


def _spaced(run: re.Match[str]) -> str:
    return " " + "  ".join(run.group()) + " "


SEARCH_TABLE = "memories_fts"
SEARCH_DIRTY = "memories_fts_dirty"

_COLUMNS = "name, content, summary, tags, persona"
_VALUES = (
    "{r}.rowid, pjai_words({r}.name), pjai_words(pjai_text({r}.content)), "
    "pjai_words({r}.summary), pjai_words({r}.tags), char(57344) || hex({r}.persona_id)"
)
"""The texts are cut with :func:`cut_cjk` (``pjai_words``). The last column, ``persona``,
holds one word made of the memory's persona's id (:func:`persona_word`), so that a
search of one persona can read that persona's memories, not every memory with the
word."""

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
    f"CREATE TRIGGER {SEARCH_TABLE}_update AFTER UPDATE OF name, content, summary, tags, "
    "persona_id ON memories WHEN new.name IS NOT old.name OR new.summary IS NOT old.summary "
    "OR new.tags IS NOT old.tags OR pjai_text(new.content) IS NOT pjai_text(old.content) "
    "OR new.persona_id IS NOT old.persona_id "
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


def persona_word(persona_id: str) -> str:
    """The word the index's ``persona`` column holds for ``persona_id``: its UTF-8 bytes
    in hex, as SQLite's ``hex()`` writes them, after U+E000: one token whatever the id
    holds, and none a search's words can be (they are letters, digits and marks; U+E000
    is a private-use character, which the tokenizer keeps in words). Two ids may share a
    stemmed word; a search keeps its ``persona_id`` condition too."""
    return "\ue000" + persona_id.encode().hex().upper()


_MARKED = r"([A-Za-z])[\u0300-\u036f]+"
"""A Latin letter and the accents on it, in decomposed (NFD) text; PostgreSQL's regular
expressions read it as Python's do."""
_MARKED_RE = re.compile(_MARKED)


def fold_accents(text: str) -> str:
    """``text`` with the accents taken off its Latin letters, as PostgreSQL's search
    documents have them (``Café`` -> ``Cafe``; ``й`` stays ``й``)."""
    if text.isascii():
        return text
    plain = _MARKED_RE.sub(r"\1", unicodedata.normalize("NFD", text))
    return unicodedata.normalize("NFC", plain)


def _folded(value: str) -> str:
    """SQL: ``value`` as :func:`fold_accents` folds it and :func:`cut_cjk` cuts it. ASCII
    text is taken as it is (most text; folding costs several times the rest of the
    document); a database not in UTF-8 cannot normalize text, and its documents keep
    their accents and runs of Chinese, Japanese or Korean characters."""
    folded = f"normalize(regexp_replace(normalize({value}, NFD), '{_MARKED}', '\\1', 'g'), NFC)"
    return (
        f"CASE WHEN octet_length({value}) = length({value}) "
        "OR current_setting('server_encoding') <> 'UTF8' THEN "
        f"{value} ELSE regexp_replace({folded}, '{_POSTGRESQL_CJK}', ' \\& ', 'g') END"
    )


def _document(name: str, content: str, summary: str, tags: str) -> str:
    """SQL: the weighted document of a memory's four texts, under ``config``."""
    parts = [(name, "A"), (content, "A"), (summary, "B"), (tags, "A")]
    return " || ".join(
        f"setweight(to_tsvector(config, {_folded(text)}), '{weight}')" for text, weight in parts
    )


_SEALED = "pjai-sealed:1:"
"""How a sealed SQL primary's values start (pjai.security.columns): ciphertext, with
nothing to search."""

_CUT = ("left(name, 10000)", "left(content, 50000)", "left(summary, 10000)", "left(tags, 10000)")


class search_indexed(FunctionElement[bool]):
    """``search_indexed()``: whether the database the query runs on keeps a full-text
    index of the memories. PostgreSQL does (``search_document``); an SQLite database
    does when it is the store's state, which has :data:`SEARCH_TABLE` (an SQLite SQL
    primary has none)."""

    type = Boolean()
    inherit_cache = True
    name = "search_indexed"


@compiles(search_indexed)
def _search_indexed(element: search_indexed, compiler: SQLCompiler, **kw: Any) -> str:
    if compiler.dialect.name == "sqlite":
        return f"EXISTS (SELECT 1 FROM sqlite_master WHERE name = '{SEARCH_TABLE}')"
    return "true"


POSTGRESQL_DOCUMENT = "search_document"
"""PostgreSQL's column of each memory's text-search document (English configuration)."""

_DOCUMENT_FUNCTION = "pjai_memory_document"
_TRIGGER_FUNCTION = f"pjai_memories_{POSTGRESQL_DOCUMENT}"
_INDEX = f"ix_memories_{POSTGRESQL_DOCUMENT}"
_TRIGGER = f"memories_{POSTGRESQL_DOCUMENT}"

POSTGRESQL_FUNCTIONS = {
    # PostgreSQL refuses a tsvector over 1 MB: a memory whose text makes a larger one
    # gets the document of its first 50,000 characters (and the name's, summary's and
    # tags' first 10,000), well within it. Only long texts pay for the trial.
    _DOCUMENT_FUNCTION: (
        f"BEGIN IF left(content, {len(_SEALED)}) = '{_SEALED}' THEN RETURN NULL; END IF; "
        "IF octet_length(name) + octet_length(content) + octet_length(summary) "
        "+ octet_length(tags) <= 200000 THEN "
        f"RETURN {_document('name', 'content', 'summary', 'tags')}; END IF; "
        f"BEGIN RETURN {_document('name', 'content', 'summary', 'tags')}; "
        "EXCEPTION WHEN program_limit_exceeded THEN "
        f"RETURN {_document(*_CUT)}; END; END"
    ),
    # An update that writes the texts as they were (a tier change rewrites content in
    # place) leaves the document as it is.
    _TRIGGER_FUNCTION: (
        "BEGIN IF TG_OP = 'UPDATE' AND (NEW.name, NEW.content, NEW.summary, NEW.tags) "
        "IS NOT DISTINCT FROM (OLD.name, OLD.content, OLD.summary, OLD.tags) THEN "
        f"RETURN NEW; END IF; NEW.{POSTGRESQL_DOCUMENT} := {_DOCUMENT_FUNCTION}("
        "'english', NEW.name, NEW.content, NEW.summary, NEW.tags::text); RETURN NEW; END"
    ),
}
"""The bodies of PJai's PL/pgSQL functions, by name: the document of a memory's texts,
and the trigger that keeps ``search_document``."""


def postgresql_document(config: str) -> ColumnElement[Any]:
    """A memory's text-search document under the text search configuration ``config``,
    computed from its row (``search_document`` holds it for ``english``)."""
    return func.pjai_memory_document(
        literal_column(f"'{config}'::regconfig"),
        memories.c.name,
        memories.c.content,
        memories.c.summary,
        cast(memories.c.tags, Text),
    )


POSTGRESQL_SEARCH_OBJECTS = frozenset({("column", POSTGRESQL_DOCUMENT), ("index", _INDEX)})
"""What the search document adds to PostgreSQL's ``memories`` beside the declared tables,
as (kind, name): drift checks leave these out."""

_CREATE_DOCUMENT_FUNCTION = (
    f"{_DOCUMENT_FUNCTION}(config regconfig, name text, content text, "
    "summary text, tags text) RETURNS tsvector LANGUAGE plpgsql STABLE "
    f"AS $$ {POSTGRESQL_FUNCTIONS[_DOCUMENT_FUNCTION]} $$"
)

POSTGRESQL_SEARCH_CREATE = [
    f"ALTER TABLE memories ADD COLUMN {POSTGRESQL_DOCUMENT} tsvector",
    f"CREATE FUNCTION {_CREATE_DOCUMENT_FUNCTION}",
    f"CREATE FUNCTION {_TRIGGER_FUNCTION}() RETURNS trigger LANGUAGE plpgsql "
    f"AS $$ {POSTGRESQL_FUNCTIONS[_TRIGGER_FUNCTION]} $$",
    f"CREATE TRIGGER {_TRIGGER} BEFORE INSERT OR UPDATE OF name, content, summary, tags "
    f"ON memories FOR EACH ROW EXECUTE FUNCTION {_TRIGGER_FUNCTION}()",
    f"UPDATE memories SET {POSTGRESQL_DOCUMENT} = "
    f"{_DOCUMENT_FUNCTION}('english', name, content, summary, tags::text)",
    f"CREATE INDEX {_INDEX} ON memories USING gin ({POSTGRESQL_DOCUMENT})",
]
"""Statements that add the search document to PostgreSQL's ``memories``, filled."""

POSTGRESQL_SEARCH_DROP = [
    f"DROP INDEX {_INDEX}",
    f"DROP TRIGGER {_TRIGGER} ON memories",
    f"DROP FUNCTION {_TRIGGER_FUNCTION}()",
    f"DROP FUNCTION {_DOCUMENT_FUNCTION}(regconfig, text, text, text, text)",
    f"ALTER TABLE memories DROP COLUMN {POSTGRESQL_DOCUMENT}",
]
"""Statements that take the search document out again."""

POSTGRESQL_CJK_UPDATE = [
    f"CREATE OR REPLACE FUNCTION {_CREATE_DOCUMENT_FUNCTION}",
    f"UPDATE memories SET {POSTGRESQL_DOCUMENT} = "
    f"{_DOCUMENT_FUNCTION}('english', name, content, summary, tags::text) "
    f"WHERE concat(name, content, summary, tags::text) ~ '{_POSTGRESQL_CJK}'",
]
"""Statements that make the search documents of a database made before PJai cut
Chinese, Japanese and Korean text into characters as :data:`POSTGRESQL_SEARCH_CREATE`
makes them now: the function, then the documents of the memories holding such text."""
