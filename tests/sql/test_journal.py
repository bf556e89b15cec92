"""The SQL journal's reads, on every SQL backend."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from pjai.sql import create_sql_engine, journal, migrate
from tests.databases import BACKENDS, database

ERASED = "v1.PersonaErased"


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a migrated database of each backend whose journal holds 3,000
    events, one in a thousand an erasure."""
    with database(request.param, tmp_path) as url:
        engine = create_sql_engine(url)
        try:
            migrate.upgrade(engine)
            now = datetime.now(UTC)
            rows = [
                {
                    "event_id": f"e{seq}",
                    "global_seq": seq,
                    "client_seq": seq,
                    "generation": 0,
                    "parent_global_seq": seq - 1,
                    "parent_client_seq": seq - 1,
                    "name": ERASED if seq % 1000 == 0 else "v1.MemoryAdded",
                    "args": "{}",
                    "client_id": "c",
                    "session_id": "s",
                    "at": now,
                    "status": journal.APPLIED,
                    "recorded_at": now,
                }
                for seq in range(1, 3001)
            ]
            with engine.begin() as conn:
                conn.execute(journal.journal.insert(), rows)
                if engine.dialect.name == "postgresql":
                    conn.execute(text("ANALYZE pjai_journal"))
            yield engine
        finally:
            engine.dispose()


def _plan(engine: Engine, statement: str, params: Any) -> str:
    """How the database runs ``statement``, as its EXPLAIN tells."""
    explain = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    with engine.connect() as conn:
        cursor = conn.connection.cursor()
        cursor.execute(explain + statement, params)
        return "\n".join(str(row) for row in cursor.fetchall())


def test_a_read_by_event_name_is_found_by_its_index(engine: Engine) -> None:
    # The erasures are read each time a directory opens: not by reading every event.
    statements: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "pjai_journal" in statement:
            statements.append((statement, params))

    event.listen(engine, "before_cursor_execute", seen)
    with engine.connect() as conn:
        found = list(journal.journal_entries(conn, named=[ERASED]))
    event.remove(engine, "before_cursor_execute", seen)
    assert [record.position.global_seq for record, _status, _error in found] == [1000, 2000, 3000]
    assert statements
    for statement, params in statements:
        assert "ix_pjai_journal_name_global_seq" in _plan(engine, statement, params)
