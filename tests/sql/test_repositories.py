"""The SQL repositories' filters, on every SQL backend."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from pjai.hybrid import HybridDatabaseManager
from pjai.schema import PersonaCreated
from tests.databases import BACKENDS, database, postgres_schema

NAMES = ["100% sure", "Ada", "a_b", "axb", "back\\slash", "Per/cent"]


@pytest.fixture(params=BACKENDS)
def manager(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HybridDatabaseManager]:
    """Personas named with LIKE's wildcards, written straight to SQL."""
    with (
        database(request.param, tmp_path / "sql") as url,
        HybridDatabaseManager.open(
            tmp_path / "data", sql_urls=[url], environ={"PJAI_USE_LIVESTORE": "false"}
        ) as manager,
    ):
        for i, name in enumerate(NAMES):
            manager.commit(PersonaCreated(persona_id=f"p{i}", name=name))
        yield manager


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("%", ["100% sure"]),
        ("_", ["a_b"]),
        ("a_b", ["a_b"]),
        ("\\", ["back\\slash"]),
        ("/", ["Per/cent"]),
        ("A", ["Ada", "a_b", "axb", "back\\slash"]),  # any case
        ("", NAMES),
    ],
)
def test_a_name_filter_matches_its_text_literally(
    manager: HybridDatabaseManager, text: str, expected: list[str]
) -> None:
    found = manager.personas.list(name_contains=text)
    assert sorted(p.name for p in found) == sorted(expected)  # whatever the collation


def test_times_read_back_in_utc_whatever_the_sessions_time_zone(tmp_path: Path) -> None:
    # A PostgreSQL server, database or role set to another time zone (or PGTZ) reads
    # timestamptz in it; PJai's times are UTC on every backend.
    with postgres_schema() as url:
        parsed = make_url(url)
        options = parsed.query["options"]
        kolkata = parsed.update_query_dict({"options": f"{options} -cTimeZone=Asia/Kolkata"})
        with HybridDatabaseManager.open(
            tmp_path / "data", sql_urls=[kolkata.render_as_string(False)], environ={}
        ) as manager:
            manager.commit(PersonaCreated(persona_id="p1", name="Ada"))
            found = manager.personas.get("p1")
            assert found is not None
            assert found.created_at.utcoffset() == timedelta(0)
