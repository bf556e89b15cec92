"""A shared PostgreSQL primary in ciphertext mode: the sensitive columns are sealed, so
a marker committed on the device is in no row and no file of PostgreSQL, while PJai
reads it back in the clear and verifies the two sides equal."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from pjai.app import DataDir, Memories, Personas
from pjai.app.security import init_security, security_status
from pjai.errors import ConfigError, SqlError
from pjai.hybrid import HybridDatabaseManager
from pjai.schema import SCHEMA, MemoryFilter, MemoryTierChanged
from pjai.security import FieldCodec
from pjai.security.columns import PREFIX
from tests.databases import POSTGRES_URL, postgres_schema
from tests.security.test_erasure import fill
from tests.security.test_keys import FAST, PASSPHRASE

SEALED_TABLES = ("personas", "memories", "conversations", "conversation_messages", "bookmarks")


@pytest.fixture
def pg_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


def encrypted(path: Path, url: str, **environ: str) -> DataDir:
    data = DataDir(path, environ={"PJAI_PASSPHRASE": PASSPHRASE, "PJAI_SQL_SHARDS": url, **environ})
    init_security(data, passphrase=PASSPHRASE, params=FAST)
    return data


def sql_text(manager: HybridDatabaseManager) -> str:
    """Every row of every PJai table in the SQL primary, as text."""
    engine = manager.shards.shards[0].engine
    with engine.connect() as conn:
        return "\n".join(
            str(row)
            for table in (*SEALED_TABLES, "consents", "pjai_journal")
            for row in conn.exec_driver_sql(f"SELECT * FROM {table}")
        )


def postgres_files_holding(marker: str) -> list[str]:
    """The files of the PostgreSQL server's data directory whose bytes hold ``marker``,
    after a checkpoint has written every table and index page to them."""
    assert POSTGRES_URL is not None
    engine = create_engine(POSTGRES_URL)
    try:
        with engine.connect() as conn:
            conn.execute(text("CHECKPOINT"))
            directory = Path(conn.execute(text("SHOW data_directory")).scalar_one())
    finally:
        engine.dispose()
    if not shutil.which("grep") or not directory.is_dir():
        pytest.skip(f"PostgreSQL's data directory {directory} is not readable here")
    found = subprocess.run(
        ["grep", "-rlaF", marker, str(directory)], capture_output=True, text=True, check=False
    )
    if found.returncode > 1:
        pytest.skip(f"cannot read PostgreSQL's data directory: {found.stderr.strip()}")
    return found.stdout.split()


def test_a_sealed_primary_holds_no_marker_in_any_row_or_file(tmp_path: Path, pg_url: str) -> None:
    marker = f"sealed-{uuid.uuid4().hex[:12]}"
    data = encrypted(tmp_path / "data", pg_url)
    assert data.sql_sealed()
    assert security_status(data).sql_sealed
    with data.open() as manager:
        ada = fill(manager, "Ada", marker)
        stored = sql_text(manager)
        assert marker not in stored
        assert PREFIX in stored
        # PJai reads the rows back in the clear, and both sides are equal.
        assert manager.personas.get(ada).description == f"{marker} description"
        (memory,) = manager.memories.list(MemoryFilter(persona_id=ada))
        assert (memory.content, memory.summary) == (f"{marker} memory", marker)
        assert manager.verify().equal
        # A cold memory is stored compressed and sealed, and opens again.
        manager.commit(
            MemoryTierChanged(memory_id=memory.id, persona_id=ada, tier="cold", reason="manual")
        )
        assert manager.memories.get(memory.id).content == f"{marker} memory"
        assert manager.verify().equal
        # Rebuilding SQL from the store seals again.
        manager.repair("sql")
        assert marker not in sql_text(manager)
        assert manager.verify().equal
    assert postgres_files_holding(marker) == []


def test_a_plaintext_primary_holds_the_marker_where_the_file_check_finds_it(
    tmp_path: Path, pg_url: str
) -> None:
    """The control for the test above: the same check finds plaintext when it is there."""
    marker = f"plain-{uuid.uuid4().hex[:12]}"
    data = encrypted(tmp_path / "data", pg_url, PJAI_SQL_SEALED="false")
    assert not data.sql_sealed()
    with data.open() as manager:
        fill(manager, "Ada", marker)
        assert marker in sql_text(manager)  # the journal holds ciphertext, the tables not
        assert manager.verify().equal
    assert postgres_files_holding(marker) != []


def test_a_value_moved_to_another_column_or_persona_does_not_open(
    tmp_path: Path, pg_url: str
) -> None:
    data = encrypted(tmp_path / "data", pg_url)
    with data.open() as manager:
        ada = fill(manager, "Ada", "ada's words")
        grace = fill(manager, "Grace", "grace's words")
        engine = manager.shards.shards[0].engine
        with engine.begin() as conn:  # Ada's content into Grace's memory
            conn.exec_driver_sql(
                "UPDATE memories SET content = (SELECT content FROM memories WHERE "
                f"persona_id = '{ada}') WHERE persona_id = '{grace}'"
            )
        with pytest.raises(SqlError, match=r"memories\.content .* does not open"):
            manager.memories.list(MemoryFilter(persona_id=grace))
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE memories SET summary = name")
        with pytest.raises(SqlError, match=r"memories\.summary .* does not open"):
            manager.memories.list(MemoryFilter(persona_id=ada))


def test_a_sealed_primary_keeps_the_store_on(tmp_path: Path, pg_url: str) -> None:
    data = encrypted(tmp_path / "data", pg_url)
    with data.open() as manager:
        Personas(manager).create("Ada")
        with pytest.raises(ConfigError, match="sealed"):
            manager.set_flag("use_livestore", False)
        assert manager.use_livestore
    off = DataDir(data.path, environ={**(data.environ or {}), "PJAI_USE_LIVESTORE": "false"})
    with pytest.raises(ConfigError, match="the reactive store stays on"):
        off.open()


def test_sealing_is_asked_for_where_it_can_work(tmp_path: Path, pg_url: str) -> None:
    plain = DataDir(
        tmp_path / "plain", environ={"PJAI_SQL_SEALED": "true", "PJAI_SQL_SHARDS": pg_url}
    )
    with pytest.raises(ConfigError, match="needs an encrypted data directory"):
        plain.open()
    local = DataDir(tmp_path / "local", environ={"PJAI_PASSPHRASE": PASSPHRASE})
    init_security(local, passphrase=PASSPHRASE, params=FAST)
    assert not local.sql_sealed()  # auto: SQLite in the directory stays plaintext
    forced = DataDir(local.path, environ={**(local.environ or {}), "PJAI_SQL_SEALED": "true"})
    with pytest.raises(ConfigError, match="is for a PostgreSQL primary"):
        forced.open()
    with pytest.raises(ConfigError, match="PJAI_SQL_SEALED='maybe'"):
        DataDir(local.path, environ={"PJAI_SQL_SEALED": "maybe"}).sql_sealed()


def test_memories_added_through_the_app_read_back_from_sealed_sql(
    tmp_path: Path, pg_url: str
) -> None:
    data = encrypted(tmp_path / "data", pg_url)
    with data.open() as manager:
        ada = Personas(manager).create("Ada", description="likes tea")
        Memories(manager).add(ada.id, "tea at five", tags=["habit"])
        assert [m.content for m in manager.memories.list(MemoryFilter(persona_id=ada.id))] == [
            "tea at five"
        ]
        assert [p.description for p in manager.personas.list()] == ["likes tea"]


def test_a_schema_given_by_the_caller_still_seals_sql(tmp_path: Path, pg_url: str) -> None:
    data = encrypted(tmp_path / "data", pg_url)
    with data.key_ring() as ring, data.open(schema=SCHEMA.with_codec(FieldCodec(ring))) as manager:
        fill(manager, "Ada", "given-schema words")
        assert "given-schema words" not in sql_text(manager)
        assert manager.shards.sealer is not None
