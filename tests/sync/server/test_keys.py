"""The server's side of the keys channel, on every backend: keep, list, delete for good."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import sqlalchemy as sa

from pjai.sql.engine import create_sql_engine, empty_sqlite_log
from pjai.sync.server import asgi
from pjai.sync.server import keys as keys_module
from pjai.sync.server.asgi import create_app
from pjai.sync.server.hub import Hub
from pjai.sync.server.keys import Deletion, KeyBox, KeyItem, MemoryKeys, SqlKeys
from pjai.sync.server.log import MemoryLog
from pjai.sync.server.tables import keys as keys_table
from tests.databases import BACKENDS, database


@pytest.fixture(params=[*BACKENDS, "memory"])
def box(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyBox]:
    if request.param == "memory":
        yield MemoryKeys()
        return
    with database(request.param, tmp_path, "sync-server") as url:
        engine = create_sql_engine(url)
        box = SqlKeys(engine)
        yield box
        box.flush()
        engine.dispose()


def item(key_id: str, scope: str = "p1") -> KeyItem:
    return KeyItem(id=key_id, kind="data", scope=scope, blob=f"wrapped-{key_id}")


def test_keys_are_kept_per_store_and_a_deleted_one_stays_deleted(box: KeyBox) -> None:
    assert box.put("s1", [item("k1"), item("k2")]) == 2
    assert box.put("s1", [item("k1")]) == 0  # known already
    assert box.put("s2", [item("k9")]) == 1
    assert box.get("s1") == ([item("k1"), item("k2")], [])
    gone = [Deletion(id="k1", proof="p-k1"), Deletion(id="never-put", proof="p-n")]
    assert box.delete("s1", gone) == (1, [])
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
            assert box.delete("s1", [Deletion(id="k1", proof="p-k1")]) == (1, [])
            box.flush()  # the rewrite runs in the background
            assert secret.encode() not in files()
            assert b"wrapped-k2" in files()
        else:
            query = "SELECT relfilenode FROM pg_class WHERE oid = 'pjai_sync_keys'::regclass"
            with engine.connect() as conn:
                before = conn.exec_driver_sql(query).scalar()
            assert box.delete("s1", [Deletion(id="k1", proof="p-k1")]) == (1, [])
            box.flush()
            with engine.connect() as conn:
                assert conn.exec_driver_sql(query).scalar() != before  # written anew
        assert box.get("s1")[0] == [item("k2")]
        engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_deletions_in_a_row_share_a_rewrite_that_no_request_waits_for(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each rewrite locks every store's keys (VACUUM FULL on PostgreSQL, a checkpoint
    # that holds writers back on SQLite): a write token deleting keys one at a time in a
    # loop must not have one run per request, nor hold its requests until each is done.
    secret = "wrapped-bytes-of-an-erased-persona's-key"
    rewrites: list[str] = []
    rewrite = SqlKeys._scrub

    def counted(self: SqlKeys) -> bool:
        rewrites.append(threading.current_thread().name)
        return rewrite(self)

    monkeypatch.setattr(SqlKeys, "_scrub", counted)
    monkeypatch.setattr(keys_module, "REWRITE_GAP_S", 3600.0, raising=False)
    with database(backend, tmp_path, "sync-server") as url:
        engine = create_sql_engine(url)
        box = SqlKeys(engine)
        box.put("s1", [KeyItem(id="k0", kind="data", scope="p1", blob=secret)])
        box.put("s1", [item(f"k{n}") for n in range(1, 30)])
        for n in range(30):
            assert box.delete("s1", [Deletion(id=f"k{n}", proof=f"p-k{n}")]) == (1, [])
        box.flush()
        assert 1 <= len(rewrites) <= 2  # the first, and one for those made meanwhile
        assert threading.current_thread().name not in rewrites
        if backend == "sqlite":
            files = b"".join(p.read_bytes() for p in tmp_path.glob("sync-server.db*"))
            assert secret.encode() not in files
        assert box.get("s1")[0] == []
        engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_rewrite_a_reader_holds_back_gives_up_and_runs_again(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Waiting for the keys table's lock behind a long transaction, a VACUUM FULL would
    # hold back every request for keys queued behind it; a reader still on the SQLite
    # log keeps the deleted bytes in it. Either way the rewrite is owed, not dropped.
    monkeypatch.setattr(keys_module, "REWRITE_LOCK_WAIT_MS", 200, raising=False)
    monkeypatch.setattr(keys_module, "empty_sqlite_log", partial(empty_sqlite_log, wait_s=0.2))
    attempted = threading.Event()
    rewrite = SqlKeys._scrub

    def noted(self: SqlKeys) -> bool:
        done = rewrite(self)
        attempted.set()
        return done

    monkeypatch.setattr(SqlKeys, "_scrub", noted)
    secret = "wrapped-bytes-of-an-erased-persona's-key"
    with database(backend, tmp_path, "sync-server") as url:
        engine = create_sql_engine(url)
        box = SqlKeys(engine)
        box.put("s1", [KeyItem(id="k1", kind="data", scope="p1", blob=secret), item("k2")])
        where = "SELECT relfilenode FROM pg_class WHERE oid = 'pjai_sync_keys'::regclass"
        before = None
        if backend == "postgresql":
            with engine.connect() as conn:
                before = conn.exec_driver_sql(where).scalar()
        reader = engine.connect()
        reader.execute(sa.select(keys_table)).all()  # a transaction reading the keys
        try:
            assert box.delete("s1", [Deletion(id="k1", proof="p-k1")]) == (1, [])
            assert attempted.wait(30), "the rewrite waited for the reader"
            assert box.get("s1")[0] == [item("k2")]  # requests go on meanwhile
        finally:
            reader.rollback()
            reader.close()
        box.flush()  # the owed rewrite, now that nothing holds it back
        if backend == "sqlite":
            files = b"".join(p.read_bytes() for p in tmp_path.glob("sync-server.db*"))
            assert secret.encode() not in files
        else:
            with engine.connect() as conn:
                assert conn.exec_driver_sql(where).scalar() != before  # written anew
        engine.dispose()


ITEM = {"id": "k2", "kind": "data", "scope": "p1", "blob": "wrapped"}
BAD_REQUESTS = {
    "a NUL in the store id": ("/keys", {"store_id": "s\x00", "items": [ITEM]}),
    "a store id over 100 bytes": ("/keys", {"store_id": "é" * 51, "items": [ITEM]}),
    "a NUL in a key id": ("/keys", {"store_id": "s1", "items": [{**ITEM, "id": "k\x00"}]}),
    "a NUL in a scope": ("/keys", {"store_id": "s1", "items": [{**ITEM, "scope": "\x00"}]}),
    "a NUL in a blob": ("/keys", {"store_id": "s1", "items": [{**ITEM, "blob": "w\x00"}]}),
    "a NUL in a deleted id": (
        "/keys/delete",
        {"store_id": "s1", "deleted": [{"id": "k\x00", "proof": "p"}]},
    ),
    "a NUL in a proof": (
        "/keys/delete",
        {"store_id": "s1", "deleted": [{"id": "k1", "proof": "\x00"}]},
    ),
}


@pytest.mark.parametrize("asked", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_a_keys_request_no_database_can_keep_is_a_bad_request(
    box: KeyBox, asked: tuple[str, dict[str, Any]]
) -> None:
    # PostgreSQL keeps no NUL in text, and no hello names such a store: refused for what
    # it is on every backend, rather than kept here and failing there.
    app = create_app(Hub(MemoryLog(), None, keys=box), hosts=frozenset({"server"}))
    box.put("s1", [item("k1")])
    path, body = asked

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://server") as client:
            return await client.post(path, json=body)

    answer = asyncio.run(post())
    assert (answer.status_code, answer.json()["error"]) == (400, "bad_request")
    assert "NUL" in answer.json()["message"] or "100 bytes" in answer.json()["message"]
    assert box.get("s1") == ([item("k1")], [])  # nothing kept, nothing deleted
    assert box.usage("é" * 51) == (0, 0)


def test_changes_sent_at_once_are_checked_against_the_limits_one_by_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class SlowToCount(MemoryKeys):
        def usage(self, store_id: str) -> tuple[int, int]:
            time.sleep(0.05)  # each request's look at the store, before its write
            return super().usage(store_id)

    monkeypatch.setattr(asgi, "MAX_STORE_KEYS", 3)
    box = SlowToCount()
    app = create_app(Hub(MemoryLog(), None, keys=box), hosts=frozenset({"server"}))

    async def post_all() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://server") as client:
            changes = [{"store_id": "s1", "items": [{**ITEM, "id": f"k{n}"}]} for n in range(10)]
            answers = await asyncio.gather(*(client.post("/keys", json=c) for c in changes))
        return sorted(answer.status_code for answer in answers)

    assert asyncio.run(post_all()) == [200] * 3 + [413] * 7
    assert box.usage("s1")[0] == 3


def checked(key_id: str, proof: str) -> KeyItem:
    """A key put with the check of ``proof``, as a device shares one."""
    return msgspec.structs.replace(item(key_id), check=hashlib.sha256(proof.encode()).hexdigest())


def test_a_key_put_with_its_check_is_deleted_only_with_the_proof_it_commits_to(
    box: KeyBox,
) -> None:
    app = create_app(Hub(MemoryLog(), None, keys=box), hosts=frozenset({"server"}))
    box.put("s1", [checked("k1", "the-proof"), item("k2"), checked("k3", "proof-3")])
    assert box.get("s1") == ([item("k1"), item("k2"), item("k3")], [])  # no check listed

    async def delete(*deleted: dict[str, str]) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://server") as client:
            return await client.post("/keys/delete", json={"store_id": "s1", "deleted": deleted})

    # k2 is from an older PJai (no check): any proof deletes it. k1's is made up.
    mixed = asyncio.run(delete({"id": "k2", "proof": "any"}, {"id": "k1", "proof": "made-up"}))
    assert (mixed.status_code, mixed.json()["error"]) == (403, "forbidden")
    assert (mixed.json()["deleted"], mixed.json()["refused"]) == (1, ["k1"])
    assert box.get("s1")[0] == [item("k1"), item("k3")]
    right = asyncio.run(
        delete({"id": "k1", "proof": "the-proof"}, {"id": "k3", "proof": "proof-3"})
    )
    assert (right.status_code, right.json()) == (200, {"deleted": 2})
    assert box.get("s1")[0] == []


def test_a_keys_table_of_an_older_pjai_gets_its_check_column(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_sql_engine(url)
    with engine.begin() as conn:  # the table as a PJai before checks made it
        conn.exec_driver_sql(
            "CREATE TABLE pjai_sync_keys (store_id VARCHAR, id VARCHAR, kind VARCHAR NOT NULL, "
            "scope VARCHAR NOT NULL, blob TEXT, proof VARCHAR, created_at VARCHAR NOT NULL, "
            "deleted_at VARCHAR, PRIMARY KEY (store_id, id))"
        )
        conn.exec_driver_sql(
            "INSERT INTO pjai_sync_keys (store_id, id, kind, scope, blob, created_at) "
            "VALUES ('s1', 'k1', 'data', 'p1', 'wrapped-k1', 'now')"
        )
    box = SqlKeys(engine)
    try:
        assert box.put("s1", [checked("k2", "the-proof")]) == 1
        assert box.delete("s1", [Deletion(id="k2", proof="any")]) == (0, ["k2"])
        assert box.delete("s1", [Deletion(id="k1", proof="any")]) == (1, [])
    finally:
        box.flush()
        engine.dispose()


def test_a_store_full_of_keys_still_takes_the_deletion_of_its_own(
    box: KeyBox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A token holder filled the store's count of keys: a device's erasure still deletes
    # the keys the store keeps (a deletion of a key kept adds none), while a deletion of
    # an id never put (kept, it would add one) is refused.
    monkeypatch.setattr(asgi, "MAX_STORE_KEYS", 2)
    app = create_app(Hub(MemoryLog(), None, keys=box), hosts=frozenset({"server"}))
    box.put("s1", [checked("k1", "proof-1"), checked("k2", "proof-2")])

    async def delete(*deleted: dict[str, str]) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://server") as client:
            return await client.post("/keys/delete", json={"store_id": "s1", "deleted": deleted})

    unknown = asyncio.run(delete({"id": "k9", "proof": "x"}))
    assert (unknown.status_code, unknown.json()["error"]) == (413, "too_many_keys")
    own = asyncio.run(delete({"id": "k1", "proof": "proof-1"}))
    assert (own.status_code, own.json()) == (200, {"deleted": 1})
    assert box.get("s1")[0] == [item("k2")]
