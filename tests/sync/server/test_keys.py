"""The server's side of the keys channel, on every backend: keep, list, delete for good."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pjai.sql.engine import create_sql_engine
from pjai.sync.server.keys import Deletion, KeyBox, KeyItem, MemoryKeys, SqlKeys
from tests.databases import BACKENDS, database


@pytest.fixture(params=[*BACKENDS, "memory"])
def box(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyBox]:
    if request.param == "memory":
        yield MemoryKeys()
        return
    with database(request.param, tmp_path, "sync-server") as url:
        engine = create_sql_engine(url)
        yield SqlKeys(engine)
        engine.dispose()


def item(key_id: str, scope: str = "p1") -> KeyItem:
    return KeyItem(id=key_id, kind="data", scope=scope, blob=f"wrapped-{key_id}")


def test_keys_are_kept_per_store_and_a_deleted_one_stays_deleted(box: KeyBox) -> None:
    assert box.put("s1", [item("k1"), item("k2")]) == 2
    assert box.put("s1", [item("k1")]) == 0  # known already
    assert box.put("s2", [item("k9")]) == 1
    assert box.get("s1") == ([item("k1"), item("k2")], [])
    gone = [Deletion(id="k1", proof="p-k1"), Deletion(id="never-put", proof="p-n")]
    assert box.delete("s1", gone) == 1
    assert box.put("s1", [item("k1"), item("never-put")]) == 0  # deleted stays deleted
    kept, deleted = box.get("s1")
    assert kept == [item("k2")]
    assert sorted(deleted, key=lambda d: d.id) == gone  # with the proofs, for the devices
    assert box.get("s2") == ([item("k9")], [])
    assert box.usage("s1") == (3, len("wrapped-k2"))  # deleted ones count, without bytes
    assert box.usage("nowhere") == (0, 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_deleted_keys_wrapped_bytes_leave_the_database_files(
    backend: str, tmp_path: Path
) -> None:
    # With them and the passphrase, anyone with a copy of the server's files could open
    # what an erasure was to make unreadable.
    secret = "wrapped-bytes-of-an-erased-persona's-key"
    with database(backend, tmp_path, "sync-server") as url:
        engine = create_sql_engine(url)
        box = SqlKeys(engine)
        box.put("s1", [KeyItem(id="k1", kind="data", scope="p1", blob=secret), item("k2")])
        if backend == "sqlite":

            def files() -> bytes:
                return b"".join(p.read_bytes() for p in tmp_path.glob("sync-server.db*"))

            assert secret.encode() in files()  # where this test can see it
            assert box.delete("s1", [Deletion(id="k1", proof="p-k1")]) == 1
            assert secret.encode() not in files()
            assert b"wrapped-k2" in files()
        else:
            query = "SELECT relfilenode FROM pg_class WHERE oid = 'pjai_sync_keys'::regclass"
            with engine.connect() as conn:
                before = conn.exec_driver_sql(query).scalar()
            assert box.delete("s1", [Deletion(id="k1", proof="p-k1")]) == 1
            with engine.connect() as conn:
                assert conn.exec_driver_sql(query).scalar() != before  # written anew
        assert box.get("s1")[0] == [item("k2")]
        engine.dispose()
