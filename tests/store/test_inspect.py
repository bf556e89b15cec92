"""SQL typed by a person (the devtools console): reading only, within a budget."""

from __future__ import annotations

import threading
import tracemalloc
import zlib
from pathlib import Path

import pytest

from pjai.errors import QueryError
from pjai.store import Store
from tests.helpers import memory, persona

ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"


def test_console_sql_reads_with_the_stores_functions(store_file: Path) -> None:
    with Store.open(store_file) as store:
        store.commit(persona("p1"), memory("m1", content="Zoë"))
        columns, rows = store.inspect("SELECT id, content FROM memories", 10)
        assert (columns, [tuple(r) for r in rows]) == (["id", "content"], [("m1", "Zoë")])
        with pytest.raises(QueryError, match="only reading is allowed"):
            store.inspect("DELETE FROM memories", 10)


@pytest.mark.parametrize("in_memory", [False, True])
def test_a_query_over_its_budget_is_stopped(store_file: Path, in_memory: bool) -> None:
    with Store.memory() if in_memory else Store.open(store_file) as store:
        store.commit(persona("p1"))
        with pytest.raises(QueryError, match=r"ran for more than 0\.2 s and was stopped"):
            store.inspect(ENDLESS, 10, seconds=0.2)
        with pytest.raises(QueryError, match="longer than 1,000,000 bytes"):
            store.inspect("SELECT printf('%.*c', 2000000, 'x')", 10)
        # Values each within their limit, but many: the result as a whole has one too.
        many = (
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 501) "
            "SELECT zeroblob(999000) AS a, zeroblob(999000) AS b FROM n"
        )
        with pytest.raises(QueryError, match="the result holds more than 16,000,000 bytes"):
            store.inspect(many, 501)
        # 60 values of 249,000 characters of 4 bytes: 60 MB as UTF-8, 15 million characters
        wide = (
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 60) "
            "SELECT printf('%.*c', 249000, char(128512)) AS t FROM n"
        )
        with pytest.raises(QueryError, match="the result holds more than 16,000,000 bytes"):
            store.inspect(wide, 501)
        assert store.inspect("SELECT count(*) AS n FROM personas", 10)[1][0].n == 1


def test_a_console_query_on_a_file_waits_for_no_lock_and_holds_none(store_file: Path) -> None:
    # It reads on a connection of its own: commits and reads of the store need not wait
    # for it, nor it for them.
    with Store.open(store_file) as store:
        store.commit(persona("p1"))
        answered = threading.Event()

        def console() -> None:
            store.inspect("SELECT count(*) FROM personas", 10)
            answered.set()

        with store.exclusive():  # as a commit holds the store
            thread = threading.Thread(target=console)
            thread.start()
            assert answered.wait(timeout=30)
        thread.join()


@pytest.mark.parametrize("in_memory", [False, True])
def test_a_small_blob_of_zlib_data_is_not_inflated_past_the_longest_value(
    store_file: Path, in_memory: bool
) -> None:
    # 100 KB that pjai_text() would inflate to 100 MB: the console refuses it before
    # the text is made, as it refuses any value over its limit.
    bomb = zlib.compress(b"a" * 100_000_000, 9)
    with Store.memory() if in_memory else Store.open(store_file) as store:
        tracemalloc.start()
        try:
            with pytest.raises(QueryError, match="longer than 1,000,000 bytes"):
                store.inspect(f"SELECT length(pjai_text(x'{bomb.hex()}')) AS n", 10)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 20_000_000
        # Within the limit it inflates as always.
        small = zlib.compress("Zoë".encode())
        assert store.inspect(f"SELECT pjai_text(x'{small.hex()}') AS t", 10)[1][0].t == "Zoë"


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT 1\x00; DELETE FROM personas", r"NUL character \(\\x00\); remove it"),
        ("SELECT CAST(x'ff' AS TEXT) AS t", r"not valid UTF-8 .*read it as hex\(\) instead"),
        ("SELECT pjai_text(x'00') AS t", "incomplete or truncated stream"),
        ("SELECT pjai_words(x'ff') AS t", "must be str, not bytes"),
    ],
)
def test_console_sql_that_fails_in_a_function_or_the_text_is_a_query_error(
    store_file: Path, sql: str, reason: str
) -> None:
    # Not a bare driver error, nor a claim that the file is damaged: the SQL is at fault.
    with Store.open(store_file) as store:
        store.commit(persona("p1"))
        with pytest.raises(QueryError, match=reason):
            store.inspect(sql, 10)
        assert store.query("SELECT count(*) AS n FROM personas")[0].n == 1
