"""PostgreSQL keeps each memory's text-search document (migration 0007): kept current by
its trigger, filled for memories that were there before, read through its index."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, column, insert, table, text, update

from pjai.errors import SqlUnavailableError
from pjai.hybrid import HybridDatabaseManager
from pjai.memory.search import SearchFilter, _postgresql_query, search
from pjai.memory.words import MAX_TERMS, search_terms
from pjai.schema import MemoryFilter
from pjai.schema.ops import Insert
from pjai.schema.search import POSTGRESQL_DOCUMENT, POSTGRESQL_FUNCTIONS
from pjai.schema.tables import memories, personas
from pjai.sql import create_sql_engine, migrate
from pjai.sql.postgresql import PostgresBackend
from tests.databases import database
from tests.helpers import memory, persona, persona_row

AT = datetime(2026, 1, 1, tzinfo=UTC)


def _memory(memory_id: str, name: str, content: str) -> dict[str, object]:
    return {
        "id": memory_id,
        "persona_id": "p1",
        "type": "note",
        "name": name,
        "content": content,
        "summary": "",
        "tags": ["Café"],
        "importance": 0.5,
        "tier": "warm",
        "access_count": 0,
        "occurred_at": AT,
        "created_at": AT,
        "updated_at": AT,
    }


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    with database("postgresql", tmp_path) as url:
        engine = create_sql_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


def _found(engine: Engine, words: str) -> list[str]:
    query = _postgresql_query(search_terms(words), MemoryFilter(persona_id="p1"), 10)
    with engine.connect() as conn:
        return [row.id for row in conn.execute(query)]


def test_memories_from_before_the_migration_get_their_document(engine: Engine) -> None:
    migrate.upgrade(engine, "0006")
    memories_0006 = table("memories", *(column(c.name, c.type) for c in memories.columns))
    with engine.begin() as conn:
        conn.execute(insert(personas), [persona_row("p1", AT)])
        conn.execute(insert(memories_0006), [_memory("old", "Lighthouse", "keepers and gulls")])
    assert migrate.upgrade(engine) == migrate.head()
    assert migrate.drift(engine) == []
    assert _found(engine, "gull") == ["old"]
    assert _found(engine, "cafe") == ["old"]  # a tag, its accent folded


def test_documents_made_before_0008_get_chinese_japanese_and_korean_cut(engine: Engine) -> None:
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(insert(personas), [persona_row("p1", AT)])
        conn.execute(insert(memories), [_memory("tokyo", "", "東京タワーに行きました")])
        # The document as 0007 made it: a run of these characters was one word.
        uncut = "to_tsvector('english', name || ' ' || content || ' ' || summary)"
        conn.execute(text(f"UPDATE memories SET {POSTGRESQL_DOCUMENT} = {uncut}"))
    assert _found(engine, "東京") == []
    config = Config()
    config.set_main_option("script_location", str(Path(migrate.__file__).parent / "migrations"))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0007")
        command.upgrade(config, "head")
    assert _found(engine, "東京") == ["tokyo"]
    assert _found(engine, "cafe") == ["tokyo"]  # the whole document, made again
    # 29,999 pairs: a query PostgreSQL could not parse; the first MAX_TERMS are asked.
    long = "".join(chr(0x4E00 + i) for i in range(30_000))
    assert len(search_terms(long)) == MAX_TERMS
    assert _found(engine, long) == []
    # Down again: 0007's documents, where the run is one word, as 0007's queries look for it.
    whole_run = "to_tsquery('english', '東京タワーに行きました')"
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0007")
        found = conn.scalars(
            text(f"SELECT id FROM memories WHERE {POSTGRESQL_DOCUMENT} @@ {whole_run}")
        )
        assert found.all() == ["tokyo"]


def test_the_trigger_follows_every_write_of_the_text(engine: Engine) -> None:
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(insert(personas), [persona_row("p1", AT)])
        conn.execute(insert(memories), [_memory("m", "Violin", "tuned before the concert")])
    assert _found(engine, "concert") == ["m"]
    with engine.begin() as conn:
        conn.execute(update(memories).values(content="a kite on the beach", importance=0.9))
    assert _found(engine, "concert") == []
    assert _found(engine, "kites") == ["m"]
    with engine.begin() as conn:
        conn.execute(update(memories).values(summary="rehearsal"))
    assert _found(engine, "rehearsal") == ["m"]


def test_keyword_search_reads_the_index(engine: Engine) -> None:
    migrate.upgrade(engine)
    many = [_memory(f"m{i}", f"note {i}", f"errand number {i} in town") for i in range(3000)]
    with engine.begin() as conn:
        conn.execute(insert(personas), [persona_row("p1", AT)])
        conn.execute(insert(memories), [*many, _memory("l", "", "the lighthouse keeper")])
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE memories"))  # as autovacuum would, in time
    query = _postgresql_query(search_terms("lighthouse"), MemoryFilter(persona_id="p1"), 10)
    with engine.connect() as conn:
        # Reading the whole table is the cheapest way for so few rows: plan as for many.
        conn.execute(text("SET enable_seqscan = off"))
        compiled = query.compile(conn, compile_kwargs={"literal_binds": True})
        plan = "\n".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {compiled}"))
    assert f"ix_memories_{POSTGRESQL_DOCUMENT}" in plan
    assert _found(engine, "lighthouse") == ["l"]


_OURS = "pronamespace = current_schema()::regnamespace AND proname LIKE 'pjai_%'"


def test_the_database_has_the_document_as_pjai_defines_it(engine: Engine) -> None:
    """A change to the document's definition needs a migration that applies it."""
    migrate.upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT proname, prosrc FROM pg_proc WHERE {_OURS}")).all()
    assert {row.proname: row.prosrc.strip() for row in rows} == POSTGRESQL_FUNCTIONS


def test_downgrade_takes_the_document_out(engine: Engine) -> None:
    migrate.upgrade(engine)
    config = Config()
    config.set_main_option("script_location", str(Path(migrate.__file__).parent / "migrations"))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0006")
    with engine.connect() as conn:
        columns = conn.scalars(
            text(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = 'memories'"
            )
        ).all()
        functions = conn.scalar(text(f"SELECT count(*) FROM pg_proc WHERE {_OURS}"))
    assert "content" in columns
    assert POSTGRESQL_DOCUMENT not in columns
    assert functions == 0


def test_a_memory_too_long_for_one_document_is_kept_and_found_by_its_start(
    tmp_path: Path,
) -> None:
    # 125,000 different words: their document would pass PostgreSQL's 1 MB per tsvector.
    long = " ".join(f"w{i}" for i in range(125_000))
    with (
        database("postgresql", tmp_path) as url,
        HybridDatabaseManager.open(
            tmp_path / "data", sql_urls=[url], environ={"PJAI_USE_LIVESTORE": "false"}
        ) as manager,
    ):
        manager.commit(persona("p1"))
        manager.commit(memory("long", content=long))
        manager.commit(memory("after", content="a kite"))
        assert [h.memory_id for h in search(manager, "w17", SearchFilter())] == ["long"]
        assert [h.memory_id for h in search(manager, "kite", SearchFilter())] == ["after"]
        assert search(manager, "w124999", SearchFilter()) == []  # past the first 50,000


def test_sealed_text_gets_no_document(engine: Engine) -> None:
    migrate.upgrade(engine)
    sealed = _memory("s", "pjai-sealed:1:k:n:ZGF0YQ", "pjai-sealed:1:k:n:c2VjcmV0")
    with engine.begin() as conn:
        conn.execute(insert(personas), [persona_row("p1", AT)])
        conn.execute(insert(memories), [sealed])
        document = conn.scalar(text(f"SELECT {POSTGRESQL_DOCUMENT} FROM memories"))
    assert document is None


def test_text_written_again_unchanged_keeps_its_document(engine: Engine) -> None:
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(insert(personas), [persona_row("p1", AT)])
        conn.execute(insert(memories), [_memory("m", "Violin", "tuned before the concert")])
        conn.execute(text(f"UPDATE memories SET {POSTGRESQL_DOCUMENT} = NULL"))
        # What a move to the cold tier writes on PostgreSQL: the content as it is.
        conn.execute(update(memories).values(content=memories.c.content, tier="cold"))
        kept = conn.scalar(text(f"SELECT {POSTGRESQL_DOCUMENT} FROM memories"))
    assert kept is None


def test_accents_are_taken_off_latin_letters_only(engine: Engine) -> None:
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(insert(personas), [persona_row("p1", AT)])
        conn.execute(
            insert(memories),
            [
                _memory("latin", "Ångström", "bánh mì in Hạ Long"),
                _memory("cyrillic", "", "новый йогурт"),  # й is a letter of its own
            ],
        )
    assert _found(engine, "angstrom") == ["latin"]
    assert _found(engine, "Ha") == ["latin"]
    assert _found(engine, "новый") == ["cyrillic"]
    assert _found(engine, "йогурт") == ["cyrillic"]
    assert _found(engine, "иогурт") == []


def test_a_value_past_a_postgresql_limit_is_refused_not_taken_for_an_outage() -> None:
    """Such a write fails the same way every time: it is the event's to answer for
    (quarantined), not a reason to wait for PostgreSQL."""
    limit = psycopg.errors.ProgramLimitExceeded("index row size 3000 exceeds maximum 2704")
    backend = PostgresBackend()
    refused = backend.rejection(limit, "v1.BookmarkCreated", Insert("bookmarks", {}))
    assert refused is not None
    assert "PostgreSQL cannot store a value of bookmarks" in str(refused)
    said = backend.translate(limit, "committing")
    assert not isinstance(said, SqlUnavailableError)
