"""The shared SQL expressions give the same values on SQLite and PostgreSQL."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, insert, select, text

from pjai.schema.expressions import (
    contains_text,
    dialect_name,
    fold_case,
    has_tag,
    importance_decile,
    time_bucket,
    utc_hour,
)
from pjai.schema.render import sqlite_functions
from pjai.schema.tables import memories, metadata, personas
from tests.databases import BACKENDS, database, postgres_schema
from tests.helpers import persona_row

ROWS = [
    # id, importance, occurred_at, tags, name
    ("a", 0.0, datetime(2026, 1, 31, 23, 59, 59, 999_999, tzinfo=UTC), ["x"], "100% sure"),
    ("b", 0.15, datetime(2026, 2, 1, 0, 0, tzinfo=UTC), ["x", "y"], "a_b"),
    ("c", 0.95, datetime(2026, 2, 1, 9, 30, tzinfo=UTC), [], "axb"),
    ("d", 1.0, datetime(2026, 3, 1, 17, 0, tzinfo=UTC), ["y z"], "Ada"),
]


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """The tables on each backend; PostgreSQL sessions set to a time zone far from UTC."""
    with database(request.param, tmp_path) as url:
        engine = create_engine(url)
        if request.param == "sqlite":

            @event.listens_for(engine, "connect")
            def _functions(dbapi_connection: Any, _: Any) -> None:
                for name, function in sqlite_functions().items():  # as PJai's engines do
                    dbapi_connection.create_function(name, 1, function, deterministic=True)

        if request.param == "postgresql":

            @event.listens_for(engine, "connect")
            def _tokyo(dbapi_connection: Any, _: Any) -> None:
                with dbapi_connection.cursor() as cursor:
                    cursor.execute("SET TIME ZONE 'Asia/Tokyo'")

        metadata.create_all(engine)
        at = datetime(2026, 1, 1, tzinfo=UTC)
        with engine.begin() as conn:
            conn.execute(
                insert(personas),
                [persona_row("p1", at)],
            )
            conn.execute(
                insert(memories),
                [
                    {
                        "id": memory_id,
                        "persona_id": "p1",
                        "type": "note",
                        "name": name,
                        "content": "text",
                        "summary": "",
                        "tags": tags,
                        "importance": importance,
                        "tier": "warm",
                        "access_count": 0,
                        "occurred_at": occurred,
                        "created_at": at,
                        "updated_at": at,
                    }
                    for memory_id, importance, occurred, tags, name in ROWS
                ],
            )
        yield engine
        engine.dispose()


def values(engine: Engine, column: Any) -> dict[str, Any]:
    with engine.connect() as conn:
        return dict(conn.execute(select(memories.c.id, column).order_by(memories.c.id)).all())


def matching(engine: Engine, condition: Any) -> list[str]:
    with engine.connect() as conn:
        query = select(memories.c.id).where(condition).order_by(memories.c.id)
        return list(conn.scalars(query))


def test_hours_and_buckets_are_utc(engine: Engine) -> None:
    assert values(engine, utc_hour(memories.c.occurred_at)) == {"a": 23, "b": 0, "c": 9, "d": 17}
    occurred = memories.c.occurred_at
    assert values(engine, time_bucket(occurred, "hour")) == {
        "a": "2026-01-31T23:00",
        "b": "2026-02-01T00:00",
        "c": "2026-02-01T09:00",
        "d": "2026-03-01T17:00",
    }
    assert values(engine, time_bucket(occurred, "day"))["a"] == "2026-01-31"
    assert values(engine, time_bucket(occurred, "month")) == {
        "a": "2026-01",
        "b": "2026-02",
        "c": "2026-02",
        "d": "2026-03",
    }


def test_a_bucket_groups_its_rows(engine: Engine) -> None:
    bucket = time_bucket(memories.c.occurred_at, "month")
    query = select(bucket, importance_decile(memories.c.importance)).group_by(
        bucket, importance_decile(memories.c.importance)
    )
    with engine.connect() as conn:
        assert sorted(conn.execute(query).all()) == [
            ("2026-01", 0),
            ("2026-02", 1),
            ("2026-02", 9),
            ("2026-03", 9),
        ]


def test_importance_deciles_truncate(engine: Engine) -> None:
    # 0.15 * 10 is 1.5 and 0.95 * 10 is 9.5: truncated, not rounded; 1.0 is in the top decile.
    assert values(engine, importance_decile(memories.c.importance)) == {
        "a": 0,
        "b": 1,
        "c": 9,
        "d": 9,
    }


def test_has_tag(engine: Engine) -> None:
    assert matching(engine, has_tag(memories.c.tags, "x")) == ["a", "b"]
    assert matching(engine, has_tag(memories.c.tags, "y z")) == ["d"]
    assert matching(engine, has_tag(memories.c.tags, "z")) == []


@pytest.mark.parametrize(
    ("part", "expected"),
    [
        ("%", ["a"]),
        ("_", ["b"]),
        ("A", ["b", "c", "d"]),
        ("SURE", ["a"]),
        ("", ["a", "b", "c", "d"]),
    ],
)
def test_contains_text_is_literal_and_ignores_case(
    engine: Engine, part: str, expected: list[str]
) -> None:
    assert matching(engine, contains_text(memories.c.name, part)) == expected


def test_fold_case_lowers_every_character_as_postgresql_does() -> None:
    with postgres_schema() as url:
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                if "utf" not in str(conn.scalar(text("SHOW lc_ctype"))).lower():
                    pytest.skip("PostgreSQL lowers only ASCII letters outside a UTF-8 locale")
                characters = [
                    chr(c) for c in range(1, sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF
                ]
                lowered = conn.execute(
                    text("SELECT c, lower(c) FROM unnest(CAST(:cs AS text[])) AS c"),
                    {"cs": characters},
                ).all()
        finally:
            engine.dispose()
    assert [(c, low) for c, low in lowered if fold_case(c) != low] == []
    assert fold_case("ΒΑΣ İPEK Zoë") == "βασ ipek zoë"
    assert fold_case(None) is None


def test_dialect_name(engine: Engine) -> None:
    with engine.connect() as conn:
        assert conn.scalar(select(dialect_name())) == engine.dialect.name


def test_an_unknown_bucket_unit_is_refused() -> None:
    with pytest.raises(ValueError, match="'week'"):
        time_bucket(memories.c.occurred_at, "week")  # type: ignore[arg-type]
