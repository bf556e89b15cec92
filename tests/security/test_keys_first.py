"""A key made while a directory syncs reaches the sync server before any event sealed with
it: whoever reads the server's log learns a key's id only once the server holds the key
and the check of its deletion, so a token holder cannot delete it there, or put another
key of its id, before the device shares it."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from pjai.app import DataDir, Memories, Personas, connect, erase_persona, init_security, tending
from pjai.app.keysync import KeySync, join_store, keys_url, sync_keys
from pjai.app.security import rotate_key
from pjai.bench.syncserver import servers
from pjai.errors import ConfigError, KeyRingError
from pjai.schema.sealed import sealed_with
from pjai.schema.types import new_id
from pjai.security import FieldCodec, KeyRing
from pjai.sync.server.keys import MAX_KEYS, MAX_STORE_KEYS
from tests.security.test_keys import FAST, PASSPHRASE
from tests.security.test_keysync import (
    Quiet,
    device,
    keys_exchange,
    laptop_and_desk,
    new_token,
    served,
    server_database,
    until,
)

pytestmark = pytest.mark.anyio

MARKER = "plum-orchard"


def sealed(records: list[Any]) -> list[str | None]:
    return [sealed_with(bytes(record.args)) for record in records]


def refusing(ring: KeyRing, url: str, **_: Any) -> KeySync:
    raise ConfigError("sharing the keys: the sync server answered 503: down")


def holding(ids: set[str]) -> Callable[..., KeySync]:
    """In place of a key exchange: the server holds (or lists as deleted) ``ids``."""

    def exchange(ring: KeyRing, url: str, *, learnt: Callable[..., object], **_: Any) -> KeySync:
        learnt(frozenset(ids))
        return KeySync(0, 0, [], 0)

    return exchange


def ring_of(manager: Any) -> KeyRing:
    codec = manager.schema.codec
    assert isinstance(codec, FieldCodec)
    return codec.keys


async def test_events_sealed_with_a_key_the_server_lacks_wait_until_it_is_shared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[float] = []

    def counted(exchange: Callable[..., KeySync]) -> Callable[..., KeySync]:
        def counting(*args: Any, **kwargs: Any) -> KeySync:
            asked.append(time.monotonic())
            return exchange(*args, **kwargs)

        return counting

    data = device(tmp_path / "laptop")
    init_security(data, passphrase=PASSPHRASE, params=FAST)
    with data.open() as manager:
        keys_in = keys_exchange(data, manager)
        monkeypatch.setattr(tending, "sync_keys", counted(refusing))
        Personas(manager).create("Ada", description=MARKER)
        assert manager.store is not None
        pending = manager.store.pending()
        first = next(n for n, key in enumerate(sealed(pending)) if key is not None)
        assert await keys_in.cleared(pending) == first  # the events before it may go
        await until(lambda: len(asked) == 1)  # an exchange started in the background
        await asyncio.sleep(0.3)
        assert await keys_in.cleared(pending) == first
        assert len(asked) == 1  # a second comes only after a wait
        monkeypatch.setattr(tending, "sync_keys", counted(holding(ring_of(manager).key_ids())))
        async with asyncio.timeout(10):
            while await keys_in.cleared(pending) != len(pending):  # noqa: ASYNC110 (a thread shares)
                await asyncio.sleep(0.05)
        assert len(asked) == 2
        assert asked[1] - asked[0] >= 1.0
        unsealed = [r for r, key in zip(pending, sealed(pending), strict=True) if key is None]
        assert await keys_in.cleared(unsealed) == len(unsealed)


async def test_a_key_erased_here_holds_its_events_back_until_its_deletion_is_on_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A persona made and erased before the directory could share her key: her events
    go once the server keeps her key's deletion, so that no one who reads her key's id
    in them can put a key of that id there first."""
    data = device(tmp_path / "laptop")
    init_security(data, passphrase=PASSPHRASE, params=FAST)
    with data.open() as manager:
        ring = ring_of(manager)
        keys_in = keys_exchange(data, manager)
        monkeypatch.setattr(tending, "sync_keys", holding(ring.key_ids()))
        keys_in()  # the store's own key is on the server
        monkeypatch.setattr(tending, "sync_keys", refusing)
        before = ring.key_ids()
        ada = Personas(manager).create("Ada", description=MARKER)
        Memories(manager).add(ada.id, f"{MARKER} memory")
        ada_keys = ring.key_ids() - before
        assert ada_keys
        erase_persona(data, manager, ada.id)
        assert manager.store is not None
        pending = manager.store.pending()
        assert not ada_keys & ring.key_ids()  # destroyed here
        assert await keys_in.cleared(pending) < len(pending)
        erased = {k.key_id for k in ring.erased()}
        monkeypatch.setattr(tending, "sync_keys", holding(ring.key_ids() | erased))
        keys_in()  # the deletion is kept on the server
        assert await keys_in.cleared(pending) == len(pending)


@contextmanager
def ada_held_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[tending.KeysIn, Any, list[Any]]]:
    """An encrypted directory's key exchange, which fails (held back for 0.5 s at most),
    its manager, and the pending events of Ada, made there."""
    monkeypatch.setattr(tending, "HOLD_AT_MOST_S", 0.5)
    data = device(tmp_path / "laptop")
    init_security(data, passphrase=PASSPHRASE, params=FAST)
    with data.open() as manager:
        keys_in = keys_exchange(data, manager)
        monkeypatch.setattr(tending, "sync_keys", refusing)
        Personas(manager).create("Ada", description=MARKER)
        assert manager.store is not None
        yield keys_in, manager, manager.store.pending()


async def test_a_key_that_cannot_be_shared_holds_its_events_back_for_a_while_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A keys channel that keeps failing (a server whose keys a token holder filled)
    delays the events sealed with a new key, and those after them; it never stops them."""
    with ada_held_back(tmp_path, monkeypatch) as (keys_in, _, pending):
        assert await keys_in.cleared(pending) < len(pending)
        await asyncio.sleep(0.6)
        # Past the hold, the channel is tried again first: its failure gives the key up.
        assert await keys_in.cleared(pending) < len(pending)
        async with asyncio.timeout(10):
            while await keys_in.cleared(pending) != len(pending):  # noqa: ASYNC110 (a thread shares)
                await asyncio.sleep(0.05)
    assert "is not on the sync server 0.5 s after its first event was held back" in caplog.text


async def test_time_offline_alone_gives_no_key_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Events held back, then the device offline past the hold: as it comes back, the
    keys channel is tried again, and the key goes before its events."""
    with ada_held_back(tmp_path, monkeypatch) as (keys_in, manager, pending):
        held = await keys_in.cleared(pending)
        assert held < len(pending)
        await asyncio.sleep(1.2)  # offline: nothing asks; the failed share's wait is over
        monkeypatch.setattr(tending, "sync_keys", holding(ring_of(manager).key_ids()))
        assert await keys_in.cleared(pending) == held  # not given up: shared first
        async with asyncio.timeout(10):
            while await keys_in.cleared(pending) != len(pending):  # noqa: ASYNC110 (a thread shares)
                await asyncio.sleep(0.05)
    assert "after its first event was held back" not in caplog.text


def record_late_events(db: Path) -> None:
    """Make the sync server's SQLite database note each event it takes that names a key
    it does not hold yet (nor lists as deleted)."""
    with sqlite3.connect(db) as conn:
        conn.executescript(
            """
            CREATE TABLE late_keys (event_id TEXT, key_id TEXT);
            CREATE TRIGGER keys_first AFTER INSERT ON pjai_sync_events BEGIN
                INSERT INTO late_keys
                SELECT NEW.event_id, t.value
                FROM json_tree(CAST(NEW.record AS TEXT), '$.args') AS t
                WHERE t.key = 'key' AND t.type = 'text' AND NOT EXISTS (
                    SELECT 1 FROM pjai_sync_keys AS k
                    WHERE k.store_id = NEW.store_id AND k.id = t.value
                );
            END;
            """
        )


def server_rows(db: Path, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(query).fetchall()


def test_a_persona_made_while_syncing_has_her_key_on_the_server_before_her_events(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server_dir, db_url = server_database(tmp_path)
    db = server_dir / "sync-server.db"
    token = new_token(db_url, "shared", "write")
    record_late_events(db)
    laptop, desk, _ = laptop_and_desk(tmp_path, MARKER)
    stop = threading.Event()
    with servers(db_url, server_dir, 1) as (server,):
        sync = {"token": token, "store_id": "shared"}
        running = threading.Thread(
            target=connect, args=(laptop, server.url), kwargs={**sync, "stop": stop, "timeout": 60}
        )
        running.start()
        try:
            count = "SELECT count(*) FROM pjai_sync_events"
            deadline = time.monotonic() + 30
            while server_rows(db, count)[0][0] == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            held = server_rows(db, count)[0][0]
            assert held > 0
            with laptop.open() as manager:  # beside the running sync, as the CLI would
                lin = Personas(manager).create("Lin", description=f"{MARKER} Lin")
                Memories(manager).add(lin.id, f"{MARKER} Lin's memory")
            deadline = time.monotonic() + 30
            while server_rows(db, count)[0][0] <= held + 1 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            stop.set()
            running.join(60)
        assert server_rows(db, count)[0][0] > held + 1
        assert server_rows(db, "SELECT * FROM late_keys") == []
        join_store(desk, server.url, token=token, store_id="shared", passphrase=PASSPHRASE)
        assert connect(desk, server.url, **sync, once=True, timeout=60).level
    with desk.open() as manager:
        assert Personas(manager).get(lin.id).description == f"{MARKER} Lin"
    # Each device's keys were checked on the server, the other's copies too: all open.
    assert "wrap no device" not in caplog.text


def wait_for(check: Callable[[], object], seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while not check() and time.monotonic() < deadline:
        time.sleep(0.05)
    return bool(check())


def events_naming(db: Path, text: str) -> int:
    """How many events in the server's log name ``text`` (a persona id, an event name)."""
    found = server_rows(db, "SELECT record FROM pjai_sync_events")
    return sum(text in bytes(record).decode(errors="replace") for (record,) in found)


@contextmanager
def syncing(data: DataDir, url: str, token: str) -> Iterator[None]:
    """``data`` syncing through ``url`` in a thread, as `pjai sync connect` runs."""
    stop = threading.Event()
    kwargs = {"token": token, "store_id": "shared", "stop": stop, "timeout": 120}
    running = threading.Thread(target=connect, args=(data, url), kwargs=kwargs)
    running.start()
    try:
        yield
    finally:
        stop.set()
        running.join(60)


def ada_synced(tmp_path: Path) -> tuple[DataDir, str, Path, str]:
    """An encrypted laptop holding Ada; her id, and a sync server's database and URL."""
    laptop = device(tmp_path / "laptop")
    init_security(laptop, passphrase=PASSPHRASE, params=FAST)
    with laptop.open() as manager:
        ada = Personas(manager).create("Ada", description=f"{MARKER} Ada").id
    return laptop, ada, *server_database(tmp_path)


def test_a_full_key_quota_delays_a_device_s_events_and_never_stops_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A token holder fills the store's key quota with deletions of ids never put: no new
    # key can be put. A new persona's events, and those after them (a memory of Ada,
    # whose key the server holds, and Ada's erasure), go once the hold is over.
    monkeypatch.setattr(tending, "HOLD_AT_MOST_S", 1.0)
    laptop, ada, server_dir, db_url = ada_synced(tmp_path)
    db = server_dir / "sync-server.db"
    token, attacker = new_token(db_url, "shared", "write"), new_token(db_url, "shared", "write")
    with servers(db_url, server_dir, 1) as (server,):
        sync = {"token": token, "store_id": "shared"}
        assert connect(laptop, server.url, once=True, timeout=60, **sync).level
        room = MAX_STORE_KEYS - server_rows(db, "SELECT count(*) FROM pjai_sync_keys")[0][0]
        with httpx.Client(headers={"Authorization": f"Bearer {attacker}"}, timeout=60) as http:
            for start in range(0, room, MAX_KEYS):
                gone = [{"id": new_id(), "proof": "x"} for _ in range(min(MAX_KEYS, room - start))]
                asked = {"store_id": "shared", "deleted": gone}
                assert http.post(keys_url(server.url) + "/delete", json=asked).status_code == 200
        with laptop.open() as manager:
            lin = Personas(manager).create("Lin", description=f"{MARKER} Lin").id
            Memories(manager).add(ada, f"{MARKER} a memory of Ada, after Lin")
            erase_persona(laptop, manager, ada)
        assert connect(laptop, server.url, once=True, timeout=60, **sync).level
    assert events_naming(db, lin) >= 1
    assert events_naming(db, "v1.PersonaErased") == 1


def test_a_key_erased_before_it_was_shared_is_deleted_on_the_server_before_its_events_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Eve is made and erased offline; the sync's first exchange fails. Her events name
    # her key's id: they go only once the server keeps its deletion, so that no token
    # holder who reads the id can put a key of it there first (whose check would then
    # refuse the device's deletion at every exchange).
    real, calls = tending.sync_keys, []

    def failing_once(*args: Any, **kwargs: Any) -> KeySync:
        calls.append(1)
        if len(calls) == 1:
            raise ConfigError("reading the keys: the sync server answered 503: busy")
        return real(*args, **kwargs)

    laptop, _, server_dir, db_url = ada_synced(tmp_path)
    db = server_dir / "sync-server.db"
    token = new_token(db_url, "shared", "write")
    with servers(db_url, server_dir, 1) as (server,):
        sync = {"token": token, "store_id": "shared"}
        assert connect(laptop, server.url, once=True, timeout=60, **sync).level
        with laptop.open() as manager:  # offline
            eve = Personas(manager).create("Eve", description=f"{MARKER} Eve").id
            erase_persona(laptop, manager, eve)
        record_late_events(db)
        monkeypatch.setattr(tending, "sync_keys", failing_once)
        assert connect(laptop, server.url, once=True, timeout=60, **sync).level
    assert events_naming(db, eve) >= 2  # her creation and her erasure
    assert server_rows(db, "SELECT * FROM late_keys") == []
    with laptop.key_ring() as ring:
        (erased,) = [k.key_id for k in ring.erased()]
    kept = f"SELECT blob, proof IS NOT NULL FROM pjai_sync_keys WHERE id = '{erased}'"
    assert server_rows(db, kept) == [(None, 1)]  # kept as deleted


def test_a_restart_with_the_keys_channel_down_delays_events_and_never_stops_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A process that starts knows of no key on the server until an exchange succeeds:
    # with the keys channel down, Ada's events wait the hold out, then go.
    monkeypatch.setattr(tending, "HOLD_AT_MOST_S", 1.0)
    laptop, ada, server_dir, db_url = ada_synced(tmp_path)
    db = server_dir / "sync-server.db"
    token = new_token(db_url, "shared", "write")
    with servers(db_url, server_dir, 1) as (server,):
        sync = {"token": token, "store_id": "shared"}
        assert connect(laptop, server.url, once=True, timeout=60, **sync).level
        before = events_naming(db, ada)
        monkeypatch.setattr(tending, "sync_keys", refusing)
        with laptop.open() as manager:
            Memories(manager).add(ada, f"{MARKER} a memory of Ada")
        assert connect(laptop, server.url, once=True, timeout=60, **sync).level
    assert events_naming(db, ada) == before + 1


def test_a_key_rotated_while_syncing_is_on_the_server_before_its_events(
    tmp_path: Path,
) -> None:
    laptop, ada, server_dir, db_url = ada_synced(tmp_path)
    db = server_dir / "sync-server.db"
    token = new_token(db_url, "shared", "write")
    record_late_events(db)
    with servers(db_url, server_dir, 1) as (server,), syncing(laptop, server.url, token):
        assert wait_for(lambda: events_naming(db, ada) >= 1)
        rotated = rotate_key(laptop, ada)
        with laptop.open() as manager:
            Memories(manager).add(ada, f"{MARKER} after the rotation")
        assert wait_for(lambda: events_naming(db, ada) >= 2)
    assert server_rows(db, f"SELECT count(*) FROM pjai_sync_keys WHERE id = '{rotated}'")[0][0]
    assert server_rows(db, "SELECT * FROM late_keys") == []


def test_encryption_is_not_turned_on_while_a_sync_runs(tmp_path: Path) -> None:
    # The running client would push sealed events without sharing their keys.
    laptop = device(tmp_path / "laptop")
    with laptop.open() as manager:
        Personas(manager).create("Ada", description=f"{MARKER} Ada")
    server_dir, db_url = server_database(tmp_path)
    db = server_dir / "sync-server.db"
    token = new_token(db_url, "shared", "write")
    with servers(db_url, server_dir, 1) as (server,), syncing(laptop, server.url, token):
        assert wait_for(lambda: events_naming(db, "Ada"))
        with pytest.raises(ConfigError, match="syncs this data directory: stop it first"):
            init_security(laptop, passphrase=PASSPHRASE, params=FAST)
    assert not laptop.encrypted
    init_security(laptop, passphrase=PASSPHRASE, params=FAST)  # once it has stopped
    assert laptop.encrypted


def test_a_deletion_the_server_refuses_is_said_and_the_exchange_goes_on(
    tmp_path: Path,
) -> None:
    # A key of the erased key's id was put by someone else first (another check): the
    # server refuses its deletion (403 naming it); the rest of the exchange stands.
    data = device(tmp_path / "laptop")
    init_security(data, passphrase=PASSPHRASE, params=FAST)
    with data.open() as manager:
        eve = Personas(manager).create("Eve").id
        erase_persona(data, manager, eve)
    with data.key_ring() as ring:
        (erased,) = [k.key_id for k in ring.erased()]

    class Refusing(Quiet):
        def do_GET(self) -> None:
            self.answer(200, b'{"items": [], "deleted": []}', {})

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            if self.path.endswith("/delete"):
                message = "1 deletion(s) do not carry the proof the key was put with"
                refused = [erased, "never-asked", 7]  # a server's word: only asked ids count
                said = {"error": "forbidden", "message": message, "refused": refused}
                self.answer(403, json.dumps(said).encode(), {})
            else:
                self.answer(200, b'{"stored": 1}', {})

    learnt: list[frozenset[str]] = []
    with served(Refusing) as url, data.key_ring() as ring:
        done = sync_keys(
            ring, url, token="t", store_id="shared", directory=data.path, learnt=learnt.append
        )
    assert (done.deleted_there, done.kept_there) == (0, 1)
    assert erased in learnt[-1]  # its id is public: nothing waits for it any more


def test_a_failed_security_init_leaves_no_file_behind(tmp_path: Path) -> None:
    new = DataDir(tmp_path / "new", environ={})
    with pytest.raises(KeyRingError, match="at least 12 characters"):
        init_security(new, passphrase="short", params=FAST)
    assert not new.path.exists() or list(new.path.iterdir()) == []


def test_a_key_put_on_the_server_by_someone_else_under_an_id_held_here_is_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A token holder put a key under the id of Lin's before the laptop did (as when a
    # key given up was read from the log): devices lacking Lin's key would be given the
    # token holder's. The laptop's exchange finds that the server's copy does not open
    # with the store key and says so, once; once the operator deletes that row, the
    # laptop's own goes, and a device joining reads Lin.
    laptop, _, server_dir, db_url = ada_synced(tmp_path)
    db = server_dir / "sync-server.db"
    token, attacker = new_token(db_url, "shared", "write"), new_token(db_url, "shared", "write")
    with laptop.open() as manager:
        before = ring_of(manager).key_ids()
        lin = Personas(manager).create("Lin", description=f"{MARKER} Lin").id
        (lins,) = ring_of(manager).key_ids() - before
    with servers(db_url, server_dir, 1) as (server,):
        made_up = {"id": lins, "kind": "data", "scope": lin, "blob": "bm90IGEga2V5",
                   "check": hashlib.sha256(b"mine").hexdigest()}  # fmt: skip
        with httpx.Client(headers={"Authorization": f"Bearer {attacker}"}) as http:
            answer = http.post(
                keys_url(server.url), json={"store_id": "shared", "items": [made_up]}
            )
            assert answer.status_code == 200
        checked: set[str] = set()
        exchange = {"token": token, "store_id": "shared", "directory": laptop.path}
        with laptop.key_ring() as ring:
            assert sync_keys(ring, server.url, **exchange, checked=checked).foreign == 1
            assert sync_keys(ring, server.url, **exchange, checked=checked).foreign == 0
        said = [r.getMessage() for r in caplog.records if "wrap no device" in r.getMessage()]
        assert len(said) == 1  # said once a process
        assert lins in said[0]
        with sqlite3.connect(db) as conn:  # the operator's mend
            conn.execute("DELETE FROM pjai_sync_keys WHERE id = ?", (lins,))
        with laptop.key_ring() as ring:
            assert sync_keys(ring, server.url, **exchange).pushed == 1
        sync = {"token": token, "store_id": "shared"}
        assert connect(laptop, server.url, once=True, timeout=60, **sync).level
        desk = device(tmp_path / "desk")
        join_store(desk, server.url, token=token, store_id="shared", passphrase=PASSPHRASE)
        assert connect(desk, server.url, once=True, timeout=60, **sync).level
    with desk.open() as manager:
        assert Personas(manager).get(lin).description == f"{MARKER} Lin"
