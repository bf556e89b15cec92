"""PostgreSQL's search documents cut Chinese, Japanese and Korean text into characters,
as the store's index does, so that a word inside a sentence is found (pjai.schema.search).

The document function is replaced and the documents of the memories holding such text
are computed again. Downgrading puts 0007's function back (written out below, as 0007
made it) and computes every document again. SQLite: nothing.
"""

from __future__ import annotations

from alembic import op

from pjai.schema.search import POSTGRESQL_CJK_UPDATE

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRESQL_CJK_UPDATE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION pjai_memory_document(config regconfig, name text, "
            "content text, summary text, tags text) RETURNS tsvector LANGUAGE plpgsql "
            f"STABLE AS $$ {_BODY_0007} $$"
        )
        op.execute(
            "UPDATE memories SET search_document = "
            "pjai_memory_document('english', name, content, summary, tags::text)"
        )


def _folded_0007(value: str) -> str:
    return (
        f"CASE WHEN octet_length({value}) = length({value}) "
        "OR current_setting('server_encoding') <> 'UTF8' THEN "
        f"{value} ELSE normalize(regexp_replace(normalize({value}, NFD), "
        "'([A-Za-z])[\\u0300-\\u036f]+', '\\1', 'g'), NFC) END"
    )


def _document_0007(name: str, content: str, summary: str, tags: str) -> str:
    parts = [(name, "A"), (content, "A"), (summary, "B"), (tags, "A")]
    return " || ".join(
        f"setweight(to_tsvector(config, {_folded_0007(text)}), '{weight}')"
        for text, weight in parts
    )


_CUT = ("left(name, 10000)", "left(content, 50000)", "left(summary, 10000)", "left(tags, 10000)")
_BODY_0007 = (
    "BEGIN IF left(content, 14) = 'pjai-sealed:1:' THEN RETURN NULL; END IF; "
    "IF octet_length(name) + octet_length(content) + octet_length(summary) "
    "+ octet_length(tags) <= 200000 THEN "
    f"RETURN {_document_0007('name', 'content', 'summary', 'tags')}; END IF; "
    f"BEGIN RETURN {_document_0007('name', 'content', 'summary', 'tags')}; "
    "EXCEPTION WHEN program_limit_exceeded THEN "
    f"RETURN {_document_0007(*_CUT)}; END; END"
)
"""The body of ``pjai_memory_document`` as migration 0007 made it."""
