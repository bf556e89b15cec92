"""Keyword search with the store off over several SQL shards: each persona's search
runs in its own shard's dialect, and a search of every persona merges the shards'
hits by score."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from pjai.errors import QueryError
from pjai.hybrid import HybridDatabaseManager
from pjai.memory.search import SearchFilter, search
from pjai.sql.shards import HashRing
from tests.databases import database
from tests.helpers import memory, persona

RING = HashRing(2)
FIRST = next(f"ann-{i}" for i in range(100) if RING.shard_of(f"ann-{i}") == 0)
SECOND = next(f"bob-{i}" for i in range(100) if RING.shard_of(f"bob-{i}") == 1)
NO_INDEX = "full-text search on SQLite reads the reactive store's index"


@contextmanager
def sharded(backends: tuple[str, str], tmp_path: Path) -> Iterator[HybridDatabaseManager]:
    """A store-off manager over two shards of ``backends``, a persona on each (the first
    shard's in the first backend), each with a memory about tomatoes; the second
    persona's says it twice (it ranks higher)."""
    with ExitStack() as stack:
        urls = [
            stack.enter_context(database(backend, tmp_path / f"sql{i}", f"shard{i}"))
            for i, backend in enumerate(backends)
        ]
        off = {"PJAI_USE_LIVESTORE": "false"}
        manager = stack.enter_context(
            HybridDatabaseManager.open(tmp_path / "data", sql_urls=urls, environ=off)
        )
        for who, content in (
            (FIRST, "planted tomatoes in the garden"),
            (SECOND, "tomatoes, tomatoes and more tomatoes"),
        ):
            manager.commit(persona(who))
            manager.commit(memory(f"{who}-tomatoes", who, content=content))
            manager.commit(memory(f"{who}-kite", who, content="a kite on the beach"))
        yield manager


def _found(manager: HybridDatabaseManager, persona_id: str | None) -> list[str]:
    return [h.memory_id for h in search(manager, "tomatoes", SearchFilter(persona_id=persona_id))]


@pytest.mark.parametrize("backends", [("sqlite", "postgresql"), ("postgresql", "sqlite")])
def test_each_persona_s_search_runs_in_its_shard_s_dialect(
    backends: tuple[str, str], tmp_path: Path
) -> None:
    with sharded(backends, tmp_path) as manager:
        on_postgresql, on_sqlite = (SECOND, FIRST) if backends[0] == "sqlite" else (FIRST, SECOND)
        assert _found(manager, on_postgresql) == [f"{on_postgresql}-tomatoes"]
        # An SQLite SQL primary has no full-text index: its shard says so, as one alone does.
        with pytest.raises(QueryError, match=NO_INDEX):
            _found(manager, on_sqlite)
        with pytest.raises(QueryError, match=NO_INDEX):
            _found(manager, None)  # every persona: the SQLite shard cannot answer its part


def test_a_search_of_every_persona_merges_the_shards_hits_by_score(tmp_path: Path) -> None:
    with sharded(("postgresql", "postgresql"), tmp_path) as manager:
        assert _found(manager, None) == [f"{SECOND}-tomatoes", f"{FIRST}-tomatoes"]
        hits = search(manager, "tomatoes", limit=1)
        assert [h.memory_id for h in hits] == [f"{SECOND}-tomatoes"]
        assert _found(manager, FIRST) == [f"{FIRST}-tomatoes"]
