"""Text sorts by code point on PostgreSQL whatever the database's collation, as in the
store: one shard or several, names list in the same order with the store on and off."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from pjai.app.personas import Personas
from pjai.hybrid import HybridDatabaseManager
from pjai.sql.shards import HashRing
from tests.databases import ENGLISH, postgres_database
from tests.helpers import persona

NAMES = ["alice", "Bob_1", "Bob%2", "Zoë", "Émile", "bob", "Alice", "zed"]
OFF = {"PJAI_USE_LIVESTORE": "false"}


def _ids(shards: int) -> dict[str, str]:
    """A persona id per name, the names spread over ``shards`` in turn."""
    ring, ids = HashRing(shards), {}
    candidates = iter(f"p-{i}" for i in range(1000))
    for index, name in enumerate(NAMES):
        ids[name] = next(c for c in candidates if ring.shard_of(c) == index % shards)
    return ids


@pytest.fixture(params=[1, 2], ids=["one-shard", "two-shards"])
def urls(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """PostgreSQL databases collated in English, one per shard."""
    with ExitStack() as stack:
        yield [stack.enter_context(postgres_database(ENGLISH)) for _ in range(request.param)]


def _listed(data: Path, urls: list[str], environ: dict[str, str], **kw: str) -> list[str]:
    with HybridDatabaseManager.open(data, sql_urls=urls, environ=environ) as manager:
        return [p.name for p in Personas(manager).list(**kw)]


def test_the_databases_sort_names_in_another_order(urls: list[str]) -> None:
    # What makes the tests below mean something: the database's own order differs.
    engine = create_engine(urls[0])
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT n FROM unnest(CAST(:names AS text[])) AS n ORDER BY n"),
                {"names": NAMES},
            )
            assert [r[0] for r in rows] != sorted(NAMES)
    finally:
        engine.dispose()


def test_names_list_by_code_point_with_the_store_on_and_off(
    urls: list[str], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    with HybridDatabaseManager.open(data, sql_urls=urls, environ={}) as manager:
        ids = _ids(len(urls))
        manager.commit(*[persona(ids[name], name) for name in NAMES])
        if len(urls) > 1:
            assert {manager.shards.for_persona(i).index for i in ids.values()} == {0, 1}
    assert _listed(data, urls, {}) == sorted(NAMES)
    assert _listed(data, urls, OFF) == sorted(NAMES)


def test_a_name_search_answers_as_before(urls: list[str], tmp_path: Path) -> None:
    # Case is folded as the database's collation folds it, not by the columns' "C".
    data = tmp_path / "data"
    with HybridDatabaseManager.open(data, sql_urls=urls, environ=OFF) as manager:
        ids = _ids(len(urls))
        manager.commit(*[persona(ids[name], name) for name in NAMES])
    assert _listed(data, urls, OFF, name_contains="BOB_") == ["Bob_1"]
    assert _listed(data, urls, OFF, name_contains="b%") == ["Bob%2"]
    assert _listed(data, urls, OFF, name_contains="ZOË") == ["Zoë"]
    assert _listed(data, urls, OFF, name_contains="émile") == ["Émile"]


def test_a_name_search_folds_one_letter_at_a_time_as_the_store_does(
    urls: list[str], tmp_path: Path
) -> None:
    # The collation's own lower() makes "İ" two characters and a "Σ" ending a word the
    # final sigma; the store (fold_case) and a libc database map each letter alone.
    data = tmp_path / "data"
    names = ["İpek", "Βασίλης", "ΟΔΥΣΣΕΑΣ"]
    with HybridDatabaseManager.open(data, sql_urls=urls, environ={}) as manager:
        ids = iter(_ids(len(urls)).values())
        manager.commit(*[persona(next(ids), name) for name in names])
    for text_, found in [("ipek", ["İpek"]), ("ΒΑΣ", ["Βασίλης"]), ("σεασ", ["ΟΔΥΣΣΕΑΣ"])]:
        assert _listed(data, urls, {}, name_contains=text_) == found
        assert _listed(data, urls, OFF, name_contains=text_) == found
