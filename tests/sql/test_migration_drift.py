"""The migrations build exactly the tables ``pjai.schema`` declares, on every SQL backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import CheckConstraint, Engine, MetaData, Table, Text, inspect, text
from sqlalchemy.dialects.postgresql import psycopg

from pjai.schema import memories
from pjai.sql import create_sql_engine, migrate
from tests.databases import BACKENDS, database


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on an empty database of each backend."""
    with database(request.param, tmp_path) as url:
        engine = create_sql_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


def _checks(engine: Engine) -> dict[str, set[str]]:
    """The names of each table's CHECK constraints as the database has them."""
    inspector = inspect(engine)
    return {
        table: {str(check["name"]) for check in inspector.get_check_constraints(table)}
        for table in inspector.get_table_names()
        if table != "alembic_version"
    }


def _declared_checks(engine: Engine) -> dict[str, set[str]]:
    """The names the table definitions give their CHECK constraints (after the naming
    convention), as the database would see them."""
    preparer = engine.dialect.identifier_preparer
    return {
        table.name: {
            str(preparer.format_constraint(c))
            for c in table.constraints
            if isinstance(c, CheckConstraint)
        }
        for tables in migrate.TARGET_METADATA
        for table in tables.tables.values()
    }


def _found(engine: Engine) -> list[tuple[str, str, str]]:
    """The drift as (what, table, column or index): Alembic reports an added or removed
    column or index as one tuple and a changed column as a list of tuples."""
    found = []
    for diff in migrate.drift(engine):
        if diff[0] in ("add_index", "remove_index"):
            index = diff[1]
            found.append((diff[0], index.table.name, index.name))
            continue
        for kind, _schema, table, column, *_ in diff if isinstance(diff, list) else [diff]:
            found.append((kind, table, column if isinstance(column, str) else column.name))
    return found


_AFTER_0009 = [("add_index", "pjai_journal", "ix_pjai_journal_name_global_seq")]
"""What the migrations after 0009 add: a database at 0008 or 0009 lacks it too."""


def test_the_migration_chain_has_one_head() -> None:
    assert migrate.heads() == [migrate.head()]


def test_upgrade_head_leaves_no_drift(engine: Engine) -> None:
    assert migrate.upgrade(engine) == migrate.head()
    assert migrate.drift(engine) == []


def test_upgrade_head_makes_every_check_constraint(engine: Engine) -> None:
    # Alembic does not compare CHECK constraints, so their names are compared here.
    migrate.upgrade(engine)
    assert _checks(engine) == _declared_checks(engine)


def test_drift_finds_a_column_the_definitions_lack(engine: Engine) -> None:
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE memories ADD COLUMN mood TEXT"))
    assert _found(engine) == [("remove_column", "memories", "mood")]


def test_drift_finds_a_server_default_the_definitions_lack(engine: Engine) -> None:
    migrate.upgrade(engine)
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite cannot add a default to an existing column")
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE memories ALTER COLUMN summary SET DEFAULT ''"))
    assert _found(engine) == [("modify_default", "memories", "summary")]


def test_drift_finds_plain_text_where_compressible_text_is_declared(engine: Engine) -> None:
    # The one type SQLite reflects by affinity (ZTEXT as TEXT) is compared by its
    # declared name, so a plain TEXT column still counts as drift.
    if engine.dialect.name != "sqlite":
        pytest.skip("compressible text is plain TEXT on PostgreSQL")
    plain = MetaData(naming_convention=migrate.TARGET_METADATA[0].naming_convention)
    for tables in migrate.TARGET_METADATA:
        for table in tables.tables.values():
            table.to_metadata(plain)
    memories: Table = plain.tables["memories"]
    memories.c.content.type = Text()
    plain.create_all(engine)
    assert _found(engine) == [("modify_type", "memories", "content")]


def test_compressible_text_is_text_on_postgresql() -> None:
    dialect = psycopg.dialect()  # type: ignore[no-untyped-call]
    assert memories.c.content.type.compile(dialect=dialect) == 'TEXT COLLATE "C"'


def test_upgrade_turns_varchar_content_of_0001_into_text(engine: Engine) -> None:
    migrate.upgrade(engine, "0001")
    if engine.dialect.name == "postgresql":  # what 0001 made there before content was TEXT
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE memories ALTER COLUMN content TYPE VARCHAR"))
    migrate.upgrade(engine)
    assert migrate.drift(engine) == []


def test_drift_finds_text_of_another_collation(engine: Engine) -> None:
    # Alembic alone does not compare collations.
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's text columns have no declared collation")
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text('ALTER TABLE personas ALTER COLUMN name TYPE TEXT COLLATE "default"'))
    assert _found(engine) == [("modify_type", "personas", "name")]


def test_upgrade_gives_the_text_of_0008_code_point_order(engine: Engine) -> None:
    migrate.upgrade(engine, "0008")
    found = [diff for diff in _found(engine) if diff not in _AFTER_0009]
    if engine.dialect.name == "postgresql":  # the database's collation, not "C"
        assert ("modify_type", "personas", "name") in found
        assert ("modify_type", "pjai_journal", "event_id") in found
        assert {kind for kind, _table, _column in found} == {"modify_type"}
    else:
        assert found == []
    migrate.upgrade(engine)
    assert migrate.drift(engine) == []
    if engine.dialect.name == "postgresql":  # the search document's trigger, made again
        with engine.connect() as conn:
            triggers = conn.execute(
                text("SELECT tgname FROM pg_trigger WHERE tgrelid = 'memories'::regclass")
            )
            assert "memories_search_document" in set(triggers.scalars())
