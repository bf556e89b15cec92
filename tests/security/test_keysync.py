"""The keys channel: an encrypted store shared by two devices through a real sync
server, which keeps only wrapped keys and ciphertext; a new device joins with the
passphrase; an erasure on one device reaches the server and the other device."""

from __future__ import annotations

import asyncio
import base64
import gzip
import itertools
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pjai.app import DataDir, Memories, Personas, connect, erase_persona, init_security, tending
from pjai.app.forgetting import ForgetGone
from pjai.app.keysync import MAX_ANSWER_BYTES, MAX_LISTING_BYTES, KeysBusy, join_store, sync_keys
from pjai.app.rights import privacy_report
from pjai.app.security import change_passphrase, new_recovery_code, security_status
from pjai.app.sync import SyncOutcome
from pjai.bench.syncserver import servers
from pjai.errors import ConfigError, KeyRingError
from pjai.hybrid import HybridDatabaseManager
from pjai.schema.fields import ID_MAX_LENGTH
from pjai.security import FieldCodec, KeyRing, sharing
from pjai.security.locks import Argon2Params
from pjai.security.sharing import absorb, deletion_proof, export_items, join
from pjai.store import Store
from pjai.sync.client import SyncStatus
from pjai.sync.server import ServerDatabase
from pjai.sync.server.keys import MAX_KEYS
from pjai.sync.server.tokens import Role
from tests.databases import postgres_schema
from tests.security.test_erasure import (
    MARKER,
    echoed,
    encrypted,
    erase_stopped_before_the_rewrite,
    files_holding,
    fill,
    finishing_on_opening,
)
from tests.security.test_keys import FAST, PASSPHRASE
from tests.security.test_sql_sealed import postgres_files_holding


def device(path: Path) -> DataDir:
    return DataDir(path, environ={"PJAI_PASSPHRASE": PASSPHRASE, "PJAI_FLAG_SYNC": "true"})


def server_database(tmp_path: Path) -> tuple[Path, str]:
    """A directory for a sync server and its database's URL (SQLite, in it)."""
    server_dir = tmp_path / "server"
    server_dir.mkdir()
    return server_dir, f"sqlite:///{server_dir / 'sync-server.db'}"


def new_token(db_url: str, store_id: str, role: Role) -> str:
    """A new token's secret."""
    with ServerDatabase.open(db_url) as database:
        return database.tokens.create(store_id, role, "test")[0]


def laptop_and_desk(tmp_path: Path, marker: str) -> tuple[DataDir, DataDir, str]:
    """An encrypted laptop holding Ada (``marker`` in her text) and Grace, a desk yet to
    join its store, and Ada's id."""
    laptop, desk = device(tmp_path / "laptop"), device(tmp_path / "desk")
    init_security(laptop, passphrase=PASSPHRASE, params=FAST)
    with laptop.open() as manager:
        ada = fill(manager, "Ada", marker)
        fill(manager, "Grace", "kept-words")
    return laptop, desk, ada


@contextmanager
def laptop_and_desk_synced(
    tmp_path: Path,
) -> Iterator[tuple[DataDir, DataDir, str, Callable[[DataDir], SyncOutcome]]]:
    """The laptop and desk of :func:`laptop_and_desk` (MARKER in Ada's text), the desk
    joined, each synced once through a server that runs meanwhile; Ada's id, and a
    function that syncs a device once more."""
    server_dir, db_url = server_database(tmp_path)
    token = new_token(db_url, "shared", "write")
    laptop, desk, ada = laptop_and_desk(tmp_path, MARKER)
    with servers(db_url, server_dir, 1) as (server,):

        def sync_once(one: DataDir) -> SyncOutcome:
            return connect(one, server.url, token=token, store_id="shared", once=True, timeout=60)

        assert sync_once(laptop).level
        join_store(desk, server.url, token=token, store_id="shared", passphrase=PASSPHRASE)
        assert sync_once(desk).level
        yield laptop, desk, ada, sync_once


def keys_exchange(data: DataDir, manager: HybridDatabaseManager) -> tending.KeysIn:
    """The key exchange a sync of ``data`` runs, on ``manager``'s key ring, with no server
    behind it."""
    codec = manager.schema.codec
    assert isinstance(codec, FieldCodec)
    return tending.KeysIn(data, manager, codec.keys, "http://unused", "t", "shared")


def test_two_devices_share_an_encrypted_store_and_an_erasure(tmp_path: Path) -> None:
    server_dir, db_url = server_database(tmp_path)
    token = new_token(db_url, "shared", "write")
    laptop, desk = device(tmp_path / "laptop"), device(tmp_path / "desk")
    init_security(laptop, passphrase=PASSPHRASE, params=FAST)
    with laptop.open() as manager:
        ada = Personas(manager).create("Ada", description=MARKER)
        Memories(manager).add(ada.id, f"the {MARKER} recipe")
    with servers(db_url, server_dir, 1) as (server,):
        sync = {"token": token, "store_id": "shared", "once": True, "timeout": 60}
        assert connect(laptop, server.url, **sync).level  # keys first, then events
        with pytest.raises(KeyRingError, match="opens none"):
            join_store(desk, server.url, token=token, store_id="shared", passphrase="wrong one!!")
        joined = join_store(desk, server.url, token=token, store_id="shared", passphrase=PASSPHRASE)
        assert joined.came == 1
        assert connect(desk, server.url, **sync).level
        with desk.open() as manager:
            (found,) = Personas(manager).list()
            assert found.description == MARKER  # opened on the other device
        assert files_holding(server_dir, MARKER) == []  # the server: ciphertext only

        with laptop.open() as manager:
            erase_persona(laptop, manager, ada.id)
        assert connect(laptop, server.url, **sync).level  # the key goes from the server
        assert connect(desk, server.url, **sync).level  # and from the other device
    assert files_holding(tmp_path / "desk", MARKER) == []  # rewritten there too
    assert security_status(desk).data_keys == {}
    assert security_status(desk).erased == 1
    with desk.open() as manager:
        assert Personas(manager).list() == []
    assert files_holding(server_dir, MARKER) == []


def test_an_erasure_event_that_comes_before_its_key_s_deletion_is_compacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The erasing device's sync pushes the erasure's event at once but deletes the key
    # on the server at its next key exchange (every 10 s): another device syncing once
    # meanwhile takes the event first, and its files keep no page of the rows.
    with laptop_and_desk_synced(tmp_path) as (laptop, desk, ada, sync_once):
        assert files_holding(desk.path, MARKER) != []
        with laptop.open() as manager:
            erase_persona(laptop, manager, ada)

        def not_yet(*args: object, **kwargs: object) -> None:
            raise ConfigError("the laptop's next key exchange is later")

        with monkeypatch.context() as later:
            later.setattr(tending, "sync_keys", not_yet)
            assert sync_once(laptop).level  # the event, not the key
        assert sync_once(desk).level
        assert ada in security_status(desk).data_keys  # its deletion is still to come
        with desk.open() as manager:
            assert [p.name for p in Personas(manager).list()] == ["Grace"]
        assert files_holding(desk.path, MARKER) == []
        assert files_holding(desk.path, "kept-words") != []


def test_a_sync_stopped_after_an_erasure_s_keys_went_before_its_rewrite_is_finished_on_opening(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The desk's exchange destroys Ada's keys as it starts, her erasure event comes
    # after, and the desk stops before the rewrite that follows: with the keys gone,
    # only the mark the exchange left tells that freed pages keep her rows.
    monkeypatch.setattr(tending, "KEYS_EVERY_S", 60.0)  # no turn of tending meanwhile
    monkeypatch.setattr(tending, "KEYS_SOON_S", 60.0)
    with laptop_and_desk_synced(tmp_path) as (laptop, desk, ada, sync_once):
        with laptop.open() as manager:
            erase_persona(laptop, manager, ada)
        assert sync_once(laptop).level  # the key's deletion, the event
        real = Store.compact
        compactions: list[bool] = []

        def stopped_the_second_time(self: Store, *, wait_s: float = 5.0) -> bool:
            compactions.append(True)
            if len(compactions) == 2:  # the one after the event came
                raise KeyboardInterrupt
            return real(self, wait_s=wait_s)

        with monkeypatch.context() as patched:
            patched.setattr(Store, "compact", stopped_the_second_time)
            with pytest.raises(KeyboardInterrupt):
                sync_once(desk)
        assert ada not in security_status(desk).data_keys
        assert "store.db" in files_holding(desk.path, MARKER)  # in freed pages
    with finishing_on_opening(desk) as manager:
        assert [p.name for p in Personas(manager).list()] == ["Grace"]
        assert manager.verify().equal
    assert files_holding(desk.path, "kept-words") != []


@pytest.mark.parametrize("server_backend", ["sqlite", "postgresql"])
def test_an_erasure_leaves_the_marker_in_no_file_of_three_devices_the_server_or_postgresql(
    tmp_path: Path, server_backend: str
) -> None:
    """Three devices (one with a sealed PostgreSQL primary) and a server (on SQLite or
    PostgreSQL) hold a persona's text; after it is erased on one, the text is in no file
    anywhere, and every store still verifies and rebuilds."""
    marker = f"erased-{uuid.uuid4().hex[:12]}"
    server_dir, db_url = server_database(tmp_path)
    with postgres_schema() as pg_url, postgres_schema() as server_url:
        if server_backend == "postgresql":
            db_url = server_url
        token = new_token(db_url, "shared", "write")
        laptop, desk, ada = laptop_and_desk(tmp_path, marker)
        tablet = DataDir(
            tmp_path / "tablet",
            environ={**(desk.environ or {}), "PJAI_SQL_SHARDS": pg_url},
        )
        devices = (laptop, desk, tablet)
        with servers(db_url, server_dir, 1) as (server,):
            sync = {"token": token, "store_id": "shared", "once": True, "timeout": 60}
            assert connect(laptop, server.url, **sync).level
            for other in (desk, tablet):
                join_store(other, server.url, token=token, store_id="shared", passphrase=PASSPHRASE)
                assert connect(other, server.url, **sync).level
            assert tablet.sql_sealed()
            for each in devices:
                with each.open() as manager:
                    assert {p.name for p in Personas(manager).list()} == {"Ada", "Grace"}
                    assert marker in Personas(manager).get(ada).description
            with laptop.open() as manager:
                erase_persona(laptop, manager, ada)
            for each in devices:
                assert connect(each, server.url, **sync).level
        for each in devices:
            assert files_holding(each.path, marker) == [], each.path.name
            assert files_holding(each.path, "kept-words") != []
            assert security_status(each).erased == 1
            with each.open() as manager:
                assert [p.name for p in Personas(manager).list()] == ["Grace"]
                assert manager.verify().equal
                assert manager.store is not None
                manager.store.rebuild()
                assert manager.verify().equal
        assert files_holding(server_dir, marker) == []
        assert postgres_files_holding(marker) == []


def test_the_keys_channel_needs_the_right_token_and_a_server(tmp_path: Path) -> None:
    server_dir, db_url = server_database(tmp_path)
    reader = new_token(db_url, "shared", "read")
    other = new_token(db_url, "elsewhere", "write")
    laptop = device(tmp_path / "laptop")
    init_security(laptop, passphrase=PASSPHRASE, params=FAST)
    with laptop.open() as manager:
        Personas(manager).create("Ada")
    ring = laptop.key_ring()
    with servers(db_url, server_dir, 1) as (server,):
        with pytest.raises(ConfigError, match="403"):  # may not write
            sync_keys(ring, server.url, token=reader, store_id="shared", directory=laptop.path)
        with pytest.raises(ConfigError, match="403"):
            sync_keys(ring, server.url, token=other, store_id="shared", directory=laptop.path)
        with pytest.raises(ConfigError, match="401"):
            sync_keys(ring, server.url, token="pjai_nope", store_id="shared", directory=laptop.path)
    with pytest.raises(ConfigError, match="cannot reach"):
        sync_keys(
            ring, "http://127.0.0.1:9", token=reader, store_id="shared", directory=laptop.path
        )
    ring.close()


def test_a_key_made_after_connecting_reaches_the_running_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tending, "KEYS_EVERY_S", 0.3)
    server_dir, db_url = server_database(tmp_path)
    token = new_token(db_url, "shared", "write")
    laptop, desk = device(tmp_path / "laptop"), device(tmp_path / "desk")
    init_security(laptop, passphrase=PASSPHRASE, params=FAST)
    with servers(db_url, server_dir, 1) as (server,):
        sync = {"token": token, "store_id": "shared"}
        assert connect(laptop, server.url, once=True, timeout=60, **sync).level
        join_store(desk, server.url, token=token, store_id="shared", passphrase=PASSPHRASE)
        stop = threading.Event()
        running = threading.Thread(
            target=connect, args=(desk, server.url), kwargs={"stop": stop, **sync}
        )
        running.start()
        try:
            # A new persona on the laptop (a new key), after both connected; through the
            # command line, as a person would (one process migrates SQL at a time).
            env = {**os.environ, "PJAI_PASSPHRASE": PASSPHRASE, "PJAI_FLAG_SYNC": "true"}
            where = ["--data-dir", str(laptop.path)]
            for args in (
                ["persona", "create", "Grace", "--description", MARKER],
                ["sync", "connect", server.url, "--token", token, "--store-id", "shared",
                 "--once", "--hidden"],
            ):  # fmt: skip
                subprocess.run([sys.executable, "-m", "pjai", *args, *where], env=env, check=True)
            deadline = time.monotonic() + 60
            seen: list[str] = []
            while time.monotonic() < deadline and not seen:
                time.sleep(0.2)
                # The store alone (the running sync holds the SQL side's migrations).
                with device(tmp_path / "desk").open_store() as store:
                    seen = [r.description for r in store.query("SELECT description FROM personas")]
            assert seen == [MARKER]
        finally:
            stop.set()
            running.join()


def two_rings(tmp_path: Path) -> tuple[KeyRing, KeyRing]:
    """A ring, and another device's made from what it shares."""
    first = KeyRing.create(tmp_path / "a" / "keys.db", passphrase=PASSPHRASE, params=FAST)
    first.current("p1")
    second = join(tmp_path / "b" / "keys.db", export_items(first), PASSPHRASE)
    return first, second


def test_a_deletion_without_its_proof_is_not_carried_out(tmp_path: Path) -> None:
    first, second = two_rings(tmp_path)
    key_id, key = first.current("p1")
    forged = [{"id": key_id, "proof": "0" * 64}]  # a token holder's, not a device's
    assert absorb(second, [], forged).refused == 1
    assert absorb(second, [], [{"id": key_id, "proof": "é" * 64}]).refused == 1  # any text
    assert second.key(key_id) == key
    first.erase("p1")
    proven = [{"id": key_id, "proof": deletion_proof(first, key_id)}]
    assert absorb(second, [], proven).erased == ["p1"]
    assert second.key(key_id) is None


def test_a_key_for_a_persona_erased_here_is_not_taken_back(tmp_path: Path) -> None:
    first, second = two_rings(tmp_path)
    second.erase("p1")
    offline = first.rotate("p1")  # made on a device that had not heard of the erasure
    done = absorb(second, export_items(first), [])
    assert (done.came, done.refused) == (0, 1)
    assert second.key(offline) is None
    with pytest.raises(KeyRingError, match="p1 was erased"):
        second.current("p1")


def test_a_rotation_reaches_the_other_device(tmp_path: Path) -> None:
    first, second = two_rings(tmp_path)
    newer = first.rotate("p1")
    assert absorb(second, export_items(first), []).came == 1
    assert second.current("p1")[0] == newer  # new events there use the new key too


def test_a_key_listed_twice_is_taken_once(tmp_path: Path) -> None:
    # A server may list a key twice; another process of the directory may take it first.
    first, second = two_rings(tmp_path)
    newer = first.rotate("p1")
    items = export_items(first)
    assert absorb(second, items + items, []).came == 1
    assert second.current("p1")[0] == newer
    third = join(tmp_path / "c" / "keys.db", items + items, PASSPHRASE)
    assert third.scopes() == {"p1": 2}


def test_a_key_taken_while_another_process_erases_its_persona_is_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = two_rings(tmp_path)
    newer = first.rotate("p1")
    eraser = KeyRing.unlock(second.path, passphrase=PASSPHRASE)
    unwrap = second._unwrap_data_key

    def erasing(*args: Any) -> bytes:  # the CLI erases while the web app syncs keys
        eraser.erase("p1")
        return unwrap(*args)

    monkeypatch.setattr(second, "_unwrap_data_key", erasing)
    assert absorb(second, export_items(first), []).came == 0
    assert second.scopes() == {}
    assert second.key(newer) is None
    eraser.close()


def test_an_unreadable_shared_key_is_skipped_not_fatal(tmp_path: Path) -> None:
    first, second = two_rings(tmp_path)
    first.current("p2")
    items = export_items(first)
    broken = [{**i, "blob": "bm90IGpzb24="} if i["scope"] == "p2" else i for i in items]
    done = absorb(second, broken, [])
    assert done.refused == 1
    assert second.scopes() == {"p1": 1}


def _blob(**parts: object) -> str:
    return base64.b64encode(json.dumps(parts).encode()).decode()


@pytest.mark.parametrize(
    "blob",
    [
        _blob(nonce="", wrapped=base64.b64encode(b"x" * 32).decode()),  # AES-GCM refuses it
        _blob(wrapped="eA=="),
        _blob(nonce=5, wrapped="eA=="),
        base64.b64encode(b"[" * 5000 + b"]" * 5000).decode(),
    ],
    ids=["empty nonce", "no nonce", "a number for a nonce", "nested deep"],
)
def test_a_shared_key_no_device_made_is_refused_not_fatal(tmp_path: Path, blob: str) -> None:
    first, second = two_rings(tmp_path)
    bogus = {"id": "zzzz-bogus", "kind": "data", "scope": "p1", "blob": blob}
    done = absorb(second, [*export_items(first), bogus], [])
    assert (done.came, done.refused) == (0, 1)
    # Nor does a wrap of that kind, or one asking for days of stretching, stop a join.
    wrap = {"id": "zzzz-wrap", "kind": "wrap", "scope": "", "blob": blob}
    slow = _blob(salt="c2FsdHNhbHQ=", params="argon2id:1000000:4:65536", nonce="", wrapped="")
    hard = {**wrap, "id": "zzzz-slow", "blob": slow}
    third = join(tmp_path / "c" / "keys.db", [wrap, hard, *export_items(first)], PASSPHRASE)
    assert third.scopes() == {"p1": 1}


def test_a_ring_made_with_more_stretching_than_a_shared_wrap_may_ask_still_opens(
    tmp_path: Path,
) -> None:
    hard = Argon2Params(iterations=12, lanes=1, memory_kib=8 * 1024)
    KeyRing.create(tmp_path / "keys.db", passphrase=PASSPHRASE, params=hard).close()
    KeyRing.unlock(tmp_path / "keys.db", passphrase=PASSPHRASE).close()


def test_a_server_answer_of_another_shape_is_a_clear_error(tmp_path: Path) -> None:
    ring = KeyRing.create(tmp_path / "keys.db", passphrase=PASSPHRASE, params=FAST)
    for answer in [b"[1]", b'{"items": 5, "deleted": []}', b'{"items": [[1]], "deleted": []}']:
        with serving(answer) as url, pytest.raises(ConfigError, match="not a list of keys"):
            sync_keys(ring, url, token="t", store_id="s", directory=tmp_path)
    with serving(b" " * (MAX_LISTING_BYTES + 1)) as url, pytest.raises(ConfigError, match="passed"):
        sync_keys(ring, url, token="t", store_id="s", directory=tmp_path)
    ring.close()


GZIP_BOMB = gzip.compress(b" " * (64 * 1024 * 1024))
"""64 MiB of spaces, which gzip packs into about 64 KiB."""


@pytest.mark.parametrize(
    ("listing", "answer", "refusal"),
    [
        ((b"", {}), (GZIP_BOMB, {"Content-Encoding": "gzip"}), "sent its answer as gzip"),
        ((b"", {}), (b" " * (MAX_ANSWER_BYTES + 1), {}), "passed 65,536 bytes"),
        ((GZIP_BOMB, {"Content-Encoding": "gzip"}), (b"{}", {}), "sent its answer as gzip"),
    ],
)
def test_a_server_answer_is_read_as_sent_and_no_further_than_its_bound(
    tmp_path: Path,
    listing: tuple[bytes, dict[str, str]],
    answer: tuple[bytes, dict[str, str]],
    refusal: str,
) -> None:
    asked_for: list[str | None] = []

    class Answer(Quiet):
        def do_GET(self) -> None:
            asked_for.append(self.headers["Accept-Encoding"])
            body, headers = listing
            self.answer(200, body or b'{"items": [], "deleted": []}', headers)

        def do_POST(self) -> None:
            asked_for.append(self.headers["Accept-Encoding"])
            self.rfile.read(int(self.headers["Content-Length"]))
            self.answer(200, *answer)

    ring = KeyRing.create(tmp_path / "keys.db", passphrase=PASSPHRASE, params=FAST)
    with served(Answer) as url, pytest.raises(ConfigError, match=refusal):
        sync_keys(ring, url, token="t", store_id="s", directory=tmp_path)
    ring.close()
    assert asked_for
    assert set(asked_for) == {"identity"}


@contextmanager
def serving(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Iterator[str]:
    """A server answering every request with ``status``, ``headers`` and ``body``; its
    URL."""

    class Answer(Quiet):
        def do_GET(self) -> None:
            self.answer(status, body, headers or {})

    with served(Answer) as url:
        yield url


class Quiet(BaseHTTPRequestHandler):
    """A request handler that logs nothing."""

    def answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def served(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A server in a thread of its own, answering with ``handler``; its URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize(
    ("body", "retry_after", "asked"),
    [
        (b'{"error": "rate_limited", "message": "too many", "retry_after": 2.5}', "3", 2.5),
        (b'{"error": "rate_limited", "message": "too many"}', "3", 3.0),
        (b'{"error": "rate_limited", "message": "too many", "retry_after": true}', "4", 4.0),
        (b"busy", "Wed, 21 Oct 2026 07:28:00 GMT", None),
    ],
)
def test_a_refusal_as_too_soon_says_how_long_the_server_asked_to_wait(
    tmp_path: Path, body: bytes, retry_after: str, asked: float | None
) -> None:
    ring = KeyRing.create(tmp_path / "keys.db", passphrase=PASSPHRASE, params=FAST)
    with (
        serving(body, 429, {"Retry-After": retry_after}) as url,
        pytest.raises(KeysBusy, match="answered 429") as refused,
    ):
        sync_keys(ring, url, token="t", store_id="s", directory=tmp_path)
    assert refused.value.retry_after == asked
    ring.close()


@contextmanager
def busy_at_first(wait: float) -> Iterator[tuple[str, list[float]]]:
    """A keys channel that refuses its first request as too soon, asking for ``wait``
    seconds, then lists no keys and takes what it is given; its URL, and when each
    listing was asked for."""
    asked: list[float] = []

    class Answer(Quiet):
        def do_GET(self) -> None:
            asked.append(time.monotonic())
            if len(asked) == 1:
                refusal = b'{"error": "rate_limited", "message": "too many"}'
                self.answer(429, refusal, {"Retry-After": str(wait)})
            else:
                self.answer(200, b'{"items": [], "deleted": []}', {})

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.answer(200, b"{}", {})

    with served(Answer) as url:
        yield url, asked


def test_joining_asks_a_busy_server_again_after_the_wait_it_asked_for(tmp_path: Path) -> None:
    laptop = device(tmp_path / "laptop")
    init_security(laptop, passphrase=PASSPHRASE, params=FAST)
    with laptop.key_ring() as ring:
        listing = json.dumps({"items": export_items(ring), "deleted": []}).encode()
    asked: list[float] = []

    class BusyTwice(Quiet):
        def do_GET(self) -> None:
            asked.append(time.monotonic())
            if len(asked) <= 2:
                refusal = b'{"error": "rate_limited", "message": "too many", "retry_after": 0.3}'
                self.answer(429, refusal, {"Retry-After": "1"})
            else:
                self.answer(200, listing, {})

    desk = device(tmp_path / "desk")
    with served(BusyTwice) as url:
        join_store(desk, url, token="t", store_id="shared", passphrase=PASSPHRASE)
    assert len(asked) == 3
    assert all(later - earlier >= 0.3 for earlier, later in itertools.pairwise(asked))
    assert desk.encrypted  # the store's key ring, opened by its passphrase


def test_joining_gives_up_on_a_server_busy_every_time(tmp_path: Path) -> None:
    asked: list[float] = []

    class AlwaysBusy(Quiet):
        def do_GET(self) -> None:
            asked.append(time.monotonic())
            refusal = b'{"error": "rate_limited", "message": "too many", "retry_after": 0.1}'
            self.answer(429, refusal, {})

    desk = device(tmp_path / "desk")
    with served(AlwaysBusy) as url, pytest.raises(KeysBusy, match="answered 429: too many"):
        join_store(desk, url, token="t", store_id="shared", passphrase=PASSPHRASE)
    assert len(asked) == 3
    assert not desk.encrypted  # no key ring made


async def until(check: Callable[[], bool]) -> None:
    """Wait until ``check()`` holds, 10 s at most."""
    async with asyncio.timeout(10):
        while not check():  # noqa: ASYNC110 (a thread of the server appends)
            await asyncio.sleep(0.01)


@pytest.mark.anyio
async def test_a_busy_server_that_refused_the_first_exchange_is_asked_again_as_its_wait_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The exchange a sync makes as it starts is refused as too soon: the next comes when
    the wait asked for ends, not at the next regular turn, however soon that is."""
    monkeypatch.setattr(tending, "KEYS_EVERY_S", 0.05)
    monkeypatch.setattr(tending, "KEYS_SOON_S", 0.01)
    data = device(tmp_path / "laptop")
    init_security(data, passphrase=PASSPHRASE, params=FAST)
    with data.open() as manager, busy_at_first(1) as (url, asked):
        codec = manager.schema.codec
        assert isinstance(codec, FieldCodec)
        keys_in = tending.KeysIn(data, manager, codec.keys, url, "t", "shared")
        with pytest.raises(KeysBusy, match="answered 429: too many") as refused:
            keys_in()
        assert refused.value.retry_after == 1.0
        tended = tending.Tending(keys_in, ForgetGone(data, manager))
        task = asyncio.create_task(tending.tend(tended))
        try:
            await until(lambda: len(asked) >= 3)
        finally:
            task.cancel()
    assert asked[1] - asked[0] >= 1.0
    assert asked[2] >= asked[1]  # then the regular turns go on


@pytest.mark.anyio
async def test_the_turns_an_erasure_called_for_come_after_a_busy_server_s_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An erasure calls for an exchange, which is refused as too soon: it comes again as
    the wait ends, and the follow-ups after it are put off as much, not dropped."""
    monkeypatch.setattr(tending, "KEYS_EVERY_S", 60.0)  # no regular turn meanwhile
    monkeypatch.setattr(tending, "KEYS_SOON_S", 0.01)
    monkeypatch.setattr(tending, "_FOLLOW_UPS_S", (0.2, 0.4))
    turns: list[float] = []

    class Busy:
        held_until = 0.0
        looks = 0

        def __call__(self) -> None:
            turns.append(time.monotonic())
            if len(turns) == 1:
                self.held_until = time.monotonic() + 0.3
                raise KeysBusy("the sync server answered 429: too many", retry_after=0.3)

        def due(self) -> bool:  # one erasure, seen at the first look
            self.looks += 1
            return self.looks == 1

    task = asyncio.create_task(tending.tend(Busy()))  # type: ignore[arg-type]
    try:
        await until(lambda: len(turns) >= 4)
    finally:
        task.cancel()
    assert turns[1] - turns[0] >= 0.3
    assert turns[2] - turns[0] >= 0.3 + 0.2
    assert turns[3] - turns[0] >= 0.3 + 0.4


def test_what_erased_personas_left_is_dropped_when_the_keys_exchange_fails() -> None:
    dropped: list[bool] = []

    def refused() -> None:
        raise KeysBusy("the sync server answered 429: too many", retry_after=30)

    tend_once = tending.Tending(refused, lambda: dropped.append(True))  # type: ignore[arg-type]
    with pytest.raises(KeysBusy):
        tend_once()
    assert dropped == [True]


def test_after_a_passphrase_change_the_old_one_joins_no_device(tmp_path: Path) -> None:
    server_dir, db_url = server_database(tmp_path)
    token = new_token(db_url, "shared", "write")
    laptop, desk = device(tmp_path / "laptop"), device(tmp_path / "desk")
    init_security(laptop, passphrase=PASSPHRASE, params=FAST)
    with servers(db_url, server_dir, 1) as (server,):
        with laptop.key_ring() as ring:
            sync_keys(ring, server.url, token=token, store_id="shared", directory=laptop.path)
        # The desk joined with the passphrase of then; it keeps its own lock.
        join_store(desk, server.url, token=token, store_id="shared", passphrase=PASSPHRASE)
        change_passphrase(laptop, "a new passphrase here", params=FAST)
        with laptop_ring(laptop, "a new passphrase here") as ring:
            assert len(ring.retired()) == 1
            done = sync_keys(
                ring, server.url, token=token, store_id="shared", directory=laptop.path
            )
            assert done.deleted_there == 1
        with desk.key_ring() as ring:  # the desk does not put the old wrap back
            sync_keys(ring, server.url, token=token, store_id="shared", directory=desk.path)
        old, new = device(tmp_path / "old"), device(tmp_path / "new")
        with pytest.raises(KeyRingError, match="opens none"):
            join_store(old, server.url, token=token, store_id="shared", passphrase=PASSPHRASE)
        join_store(
            new, server.url, token=token, store_id="shared", passphrase="a new passphrase here"
        )
        with (
            laptop_ring(new, "a new passphrase here") as joined,
            laptop_ring(laptop, "a new passphrase here") as original,
        ):
            assert joined.store_key_fingerprint == original.store_key_fingerprint


def laptop_ring(data: DataDir, passphrase: str) -> KeyRing:
    return KeyRing.unlock(data.keys_path, passphrase=passphrase)


def test_a_new_device_joins_with_a_one_time_recovery_code(tmp_path: Path) -> None:
    server_dir, db_url = server_database(tmp_path)
    token = new_token(db_url, "shared", "write")
    laptop = device(tmp_path / "laptop")
    init_security(laptop, passphrase=PASSPHRASE, params=FAST)
    code = new_recovery_code(laptop, params=FAST)
    with laptop.open() as manager:
        Personas(manager).create("Ada", description=MARKER)
    with servers(db_url, server_dir, 1) as (server,):
        sync = {"token": token, "store_id": "shared", "once": True, "timeout": 60}
        assert connect(laptop, server.url, **sync).level
        phone = DataDir(
            tmp_path / "phone",
            environ={"PJAI_PASSPHRASE": "the phone's own passphrase", "PJAI_FLAG_SYNC": "true"},
        )
        with pytest.raises(KeyRingError, match="at least 12"):  # nothing made for a bad one
            join_store(
                phone, server.url, token=token, store_id="shared", passphrase="short",
                recovery_code=code,
            )  # fmt: skip
        assert not phone.encrypted
        join_store(
            phone, server.url, token=token, store_id="shared",
            passphrase="the phone's own passphrase", recovery_code=code,
        )  # fmt: skip
        assert connect(phone, server.url, **sync).level
        with phone.open() as manager:
            assert [p.description for p in Personas(manager).list()] == [MARKER]
        # Used up: on the server, and on the laptop after its next exchange.
        with pytest.raises(KeyRingError, match="opens none"):
            join_store(
                device(tmp_path / "tablet"), server.url, token=token, store_id="shared",
                passphrase="another passphrase", recovery_code=code,
            )  # fmt: skip
        with laptop.key_ring() as ring:
            assert "recovery code" in ring.locks()
            sync_keys(ring, server.url, token=token, store_id="shared", directory=laptop.path)
            assert "recovery code" not in ring.locks()


def test_a_compaction_another_process_held_up_is_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not synced: nothing waits for a server, the erasure's compaction is due at once.
    laptop = encrypted(tmp_path / "laptop")
    with laptop.open() as manager:
        ada = Personas(manager).create("Ada", description=MARKER)
        keys_in = keys_exchange(laptop, manager)
        erase_persona(laptop, manager, ada.id)
        tried: list[bool] = []

        def held_up(self: Store, *, wait_s: float = 5.0) -> bool:
            tried.append(True)
            return False  # a reader of an older state kept the log

        monkeypatch.setattr(Store, "compact", held_up)
        keys_in.compact_erased()
        keys_in.compact_erased()  # not done: tried again
        assert len(tried) == 2
        monkeypatch.undo()
        keys_in.compact_erased()  # done now
        tried.clear()
        monkeypatch.setattr(Store, "compact", held_up)
        keys_in.compact_erased()
        assert tried == []  # nothing new to compact


def test_an_erasure_the_running_sync_rewrites_once_confirmed_is_finished_then(
    tmp_path: Path,
) -> None:
    # Waiting for the server, the erasure left its mark; the sync's compaction once the
    # server confirms it clears it, not the next opening of the directory.
    laptop = device(tmp_path / "laptop")
    init_security(laptop, passphrase=PASSPHRASE, params=FAST)
    with laptop.open() as manager:
        ada = fill(manager, "Ada", MARKER)
        store = manager.store
        assert store is not None
        store.rebase(echoed(store.pending()))  # as the sync server confirms
        keys_in = keys_exchange(laptop, manager)
        assert erase_persona(laptop, manager, ada).unfinished
        keys_in.compact_erased()  # still waiting: nothing to do yet
        assert privacy_report(manager).unfinished_erasures == [ada]
        store.rebase(echoed(store.pending(), after=store.confirmed_head))
        keys_in.compact_erased()
        assert privacy_report(manager).unfinished_erasures == []
        assert files_holding(laptop.path, MARKER) == []


def test_a_rewrite_owed_as_a_sync_starts_is_done_by_its_first_compaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Owed since after the directory was opened (as when the web app connects its sync
    # later): nothing this process saw calls for a compaction, the mark does.
    laptop = encrypted(tmp_path / "laptop")
    with laptop.open() as manager:
        ada = fill(manager, "Ada", MARKER)
        fill(manager, "Grace", "kept-words")
        erase_stopped_before_the_rewrite(monkeypatch, laptop, manager, ada)
        assert files_holding(laptop.path, MARKER) != []  # in freed pages, or the logs
        keys_exchange(laptop, manager).compact_erased()
        assert privacy_report(manager).unfinished_erasures == []
    assert files_holding(laptop.path, MARKER) == []


def test_an_erasure_made_while_connected_is_compacted_once_confirmed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tending, "KEYS_EVERY_S", 0.3)
    server_dir, db_url = server_database(tmp_path)
    token = new_token(db_url, "shared", "write")
    laptop = device(tmp_path / "laptop")
    init_security(laptop, passphrase=PASSPHRASE, params=FAST)
    with laptop.open() as manager:
        ada = Personas(manager).create("Ada", description=MARKER)
        Memories(manager).add(ada.id, f"the {MARKER} recipe")
    with servers(db_url, server_dir, 1) as (server,):
        sync = {"token": token, "store_id": "shared"}
        before = connect(laptop, server.url, once=True, timeout=60, **sync)
        assert before.level
        stop, confirmed_once = threading.Event(), threading.Event()

        def confirmed(status: SyncStatus) -> None:  # the erasure's events reached the server
            if status.confirmed_head > before.status.confirmed_head and not status.pending:
                confirmed_once.set()

        running = threading.Thread(
            target=connect,
            args=(laptop, server.url),
            kwargs={"stop": stop, "report": confirmed, "timeout": 120, **sync},
        )
        running.start()
        try:
            # Erased from another terminal while the sync runs: pending, then confirmed.
            env = {**os.environ, "PJAI_PASSPHRASE": PASSPHRASE, "PJAI_FLAG_SYNC": "true"}
            subprocess.run(
                [sys.executable, "-m", "pjai", "privacy", "erase", ada.id, "--yes",
                 "--data-dir", str(laptop.path)],
                env=env, check=True, capture_output=True,
            )  # fmt: skip
            # The sync goes on: its next key exchange after the confirmation compacts
            # (the erasing process may destroy the key only after the sync confirmed).
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not (
                confirmed_once.is_set() and files_holding(laptop.path, MARKER) == []
            ):
                time.sleep(0.1)
        finally:
            stop.set()
            running.join()
    assert confirmed_once.is_set(), "the erasure was not confirmed"
    assert files_holding(laptop.path, MARKER) == []


def test_a_join_tries_a_bounded_number_of_shared_wraps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each try is a stretching of up to seconds: a listing of thousands must not keep a
    # device busy for hours.
    stretched: list[bytes] = []
    real = sharing.stretch

    def counted(secret: str, salt: bytes, params: Argon2Params) -> bytes:
        stretched.append(salt)
        return real(secret, salt, params)

    monkeypatch.setattr(sharing, "stretch", counted)
    bogus = _blob(
        salt=base64.b64encode(b"saltsaltsalt").decode(),
        params=FAST.text(),
        nonce=base64.b64encode(b"n" * 12).decode(),
        wrapped=base64.b64encode(b"w" * 48).decode(),
    )
    items = [{"id": f"w{i:03}", "kind": "wrap", "scope": "", "blob": bogus} for i in range(40)]
    with pytest.raises(KeyRingError, match="opens none of the store's shared keys"):
        join(tmp_path / "keys.db", items, PASSPHRASE)
    assert len(stretched) == sharing.MAX_WRAPS_TRIED
    assert not (tmp_path / "keys.db").exists()


def test_an_erasure_reaches_the_other_running_device_s_keys_soon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tending, "KEYS_EVERY_S", 60.0)  # only an early exchange in time
    server_dir, db_url = server_database(tmp_path)
    token = new_token(db_url, "shared", "write")
    laptop, desk = device(tmp_path / "laptop"), device(tmp_path / "desk")
    init_security(laptop, passphrase=PASSPHRASE, params=FAST)
    with laptop.open() as manager:
        ada = Personas(manager).create("Ada", description=MARKER)
    with servers(db_url, server_dir, 1) as (server,):
        sync = {"token": token, "store_id": "shared"}
        assert connect(laptop, server.url, once=True, timeout=60, **sync).level
        join_store(desk, server.url, token=token, store_id="shared", passphrase=PASSPHRASE)
        assert connect(desk, server.url, once=True, timeout=60, **sync).level
        assert security_status(desk).erased == 0
        stop = threading.Event()
        online = {laptop.path: threading.Event(), desk.path: threading.Event()}

        def running(where: DataDir) -> threading.Thread:
            def seen(status: SyncStatus) -> None:
                if status.state == "online":
                    online[where.path].set()

            kwargs = {"stop": stop, "report": seen, "timeout": 120, **sync}
            return threading.Thread(target=connect, args=(where, server.url), kwargs=kwargs)

        threads = [running(laptop), running(desk)]
        try:
            for thread, event in zip(threads, online.values(), strict=True):
                thread.start()  # one at a time: one opening (migrating SQL) at a time
                assert event.wait(60), "not online"
            env = {**os.environ, "PJAI_PASSPHRASE": PASSPHRASE, "PJAI_FLAG_SYNC": "true"}
            subprocess.run(
                [sys.executable, "-m", "pjai", "privacy", "erase", ada.id, "--yes",
                 "--data-dir", str(laptop.path)],
                env=env, check=True, capture_output=True,
            )  # fmt: skip
            deadline = time.monotonic() + 15  # well before the next regular exchange
            while time.monotonic() < deadline and security_status(desk).erased == 0:
                time.sleep(0.1)
            assert security_status(desk).erased == 1, "the desk still holds Ada's key"
            assert security_status(desk).data_keys == {}
        finally:
            stop.set()
            for thread in threads:
                if thread.is_alive():
                    thread.join()


def test_a_persona_with_the_longest_id_shares_its_key_and_the_others(tmp_path: Path) -> None:
    server_dir, db_url = server_database(tmp_path)
    token = new_token(db_url, "shared", "write")
    laptop, desk = device(tmp_path / "laptop"), device(tmp_path / "desk")
    init_security(laptop, passphrase=PASSPHRASE, params=FAST)
    longest = "p" * ID_MAX_LENGTH
    with laptop.open() as manager:
        Personas(manager).create("Ada", description=MARKER, persona_id=longest)
        Personas(manager).create("Grace", description="kept-words")
    with servers(db_url, server_dir, 1) as (server,):
        sync = {"token": token, "store_id": "shared", "once": True, "timeout": 60}
        assert connect(laptop, server.url, **sync).level
        joined = join_store(desk, server.url, token=token, store_id="shared", passphrase=PASSPHRASE)
        assert joined.came == 2
        assert connect(desk, server.url, **sync).level
        with desk.open() as manager:
            assert manager.quarantine().events == []
            assert Personas(manager).get(longest).description == MARKER


def test_more_keys_than_one_request_carries_are_shared_and_deleted(tmp_path: Path) -> None:
    server_dir, db_url = server_database(tmp_path)
    token = new_token(db_url, "shared", "write")
    laptop = device(tmp_path / "laptop")
    init_security(laptop, passphrase=PASSPHRASE, params=FAST)
    ring = laptop.key_ring()
    scopes = [f"p{i}" for i in range(MAX_KEYS + 1)]  # made offline: shared all at once
    for scope in scopes:
        ring.current(scope)
    other = tmp_path / "other"
    other.mkdir()
    with servers(db_url, server_dir, 1) as (server,):
        shared = {"token": token, "store_id": "shared"}
        exchanged = sync_keys(ring, server.url, directory=laptop.path, **shared)
        assert exchanged.pushed == len(scopes) + 1  # and the passphrase wrap
        for scope in scopes:
            ring.erase(scope)
        exchanged = sync_keys(ring, server.url, directory=laptop.path, **shared)
        assert exchanged.deleted_there == len(scopes)
        joined = join_store(device(other / "desk"), server.url, passphrase=PASSPHRASE, **shared)
        assert joined.came == 0  # none of the erased keys
    ring.close()
