"""The SQL repositories' filters, on every SQL backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pjai.hybrid import HybridDatabaseManager
from pjai.schema import PersonaCreated
from tests.databases import BACKENDS, database

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
