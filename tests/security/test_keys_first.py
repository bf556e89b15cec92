"""A key made while a directory syncs reaches the sync server before any event sealed with
it: whoever reads the server's log learns a key's id only once the server holds the key
and the check of its deletion, so a token holder cannot delete it there, or put another
key of its id, before the device shares it."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pjai.app import Memories, Personas, connect, erase_persona, init_security, tending
from pjai.app.keysync import KeySync, join_store
from pjai.bench.syncserver import servers
from pjai.errors import ConfigError
from pjai.schema.sealed import sealed_with
from pjai.security import FieldCodec, KeyRing
from tests.security.test_keys import FAST, PASSPHRASE
from tests.security.test_keysync import (
    device,
    keys_exchange,
    laptop_and_desk,
    new_token,
    server_database,
    until,
)

pytestmark = pytest.mark.anyio

MARKER = "plum-orchard"


def sealed(records: list[Any]) -> list[str | None]:
    return [sealed_with(bytes(record.args)) for record in records]


async def test_events_sealed_with_a_key_the_server_lacks_wait_until_it_is_shared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[float] = []

    def refusing(ring: KeyRing, url: str, **_: Any) -> KeySync:
        asked.append(time.monotonic())
        raise ConfigError("sharing the keys: the sync server answered 503: down")

    def sharing(ring: KeyRing, url: str, **_: Any) -> KeySync:
        asked.append(time.monotonic())
        return KeySync(len(ring.key_ids()), 0, [], 0, on_server=frozenset(ring.key_ids()))

    data = device(tmp_path / "laptop")
    init_security(data, passphrase=PASSPHRASE, params=FAST)
    with data.open() as manager:
        keys_in = keys_exchange(data, manager)
        monkeypatch.setattr(tending, "sync_keys", refusing)
        Personas(manager).create("Ada", description=MARKER)
        assert manager.store is not None
        pending = manager.store.pending()
        first = next(n for n, key in enumerate(sealed(pending)) if key is not None)
        assert await keys_in.cleared(pending) == first  # the events before it may go
        await until(lambda: len(asked) == 1)  # an exchange started in the background
        await asyncio.sleep(0.3)
        assert await keys_in.cleared(pending) == first
        assert len(asked) == 1  # a second comes only after a wait
        monkeypatch.setattr(tending, "sync_keys", sharing)
        async with asyncio.timeout(10):
            while await keys_in.cleared(pending) != len(pending):  # noqa: ASYNC110 (a thread shares)
                await asyncio.sleep(0.05)
        assert len(asked) == 2
        assert asked[1] - asked[0] >= 1.0
        unsealed = [r for r, key in zip(pending, sealed(pending), strict=True) if key is None]
        assert await keys_in.cleared(unsealed) == len(unsealed)


async def test_events_sealed_with_a_key_erased_here_hold_nothing_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A persona made and erased before the directory could share her key: the key is
    gone, nothing is left to share, and her events go (unreadable to all)."""

    def refusing(ring: KeyRing, url: str, **_: Any) -> KeySync:
        raise ConfigError("sharing the keys: the sync server answered 503: down")

    data = device(tmp_path / "laptop")
    init_security(data, passphrase=PASSPHRASE, params=FAST)
    with data.open() as manager:
        codec = manager.schema.codec
        assert isinstance(codec, FieldCodec)
        store_key_shared = KeySync(0, 0, [], 0, on_server=frozenset(codec.keys.key_ids()))
        keys_in = keys_exchange(data, manager)
        monkeypatch.setattr(tending, "sync_keys", lambda *_, **__: store_key_shared)
        keys_in()
        monkeypatch.setattr(tending, "sync_keys", refusing)
        ada = Personas(manager).create("Ada", description=MARKER)
        Memories(manager).add(ada.id, f"{MARKER} memory")
        assert manager.store is not None
        pending = manager.store.pending()
        assert await keys_in.cleared(pending) < len(pending)
        erase_persona(data, manager, ada.id)
        pending = manager.store.pending()
        assert any(sealed(pending))
        assert await keys_in.cleared(pending) == len(pending)


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
    tmp_path: Path,
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
