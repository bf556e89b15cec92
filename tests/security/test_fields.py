"""Field encryption: sealed sensitive fields in every log, plain values in the state,
bound to their event, padded, and unreadable once their persona's key is erased."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import msgspec
import pytest

from pjai.app import sync_url
from pjai.app.eventlog import content_events
from pjai.errors import EventValidationError, KeyErasedError
from pjai.schema import (
    SCHEMA,
    BookmarkCreated,
    ConversationMessageAdded,
    ConversationStarted,
    MemoryConfig,
    MemoryUpdated,
    PersonaUpdated,
)
from pjai.schema.event import Schema
from pjai.schema.limits import MAX_ARGS_BYTES
from pjai.security import FieldCodec, KeyRing
from pjai.security.fields import bucket
from pjai.store import Store
from pjai.sync.client import SyncClient
from pjai.sync.server import ServerDatabase
from pjai.sync.server.hub import Hub
from pjai.sync.server.session import MAX_EVENT_BYTES
from pjai.sync.websocket import websocket_connector
from tests.helpers import memory, persona
from tests.security.test_keys import FAST, PASSPHRASE
from tests.sync.servers import serving

MARKER = "zebra-marmalade-41"
"""Text that must be found only where plaintext is allowed."""


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    with KeyRing.create(tmp_path / "keys" / "keys.db", passphrase=PASSPHRASE, params=FAST) as made:
        yield made


def sealed(ring: KeyRing) -> Schema:
    return SCHEMA.with_codec(FieldCodec(ring))


def logged_args(store: Store) -> list[bytes]:
    return [bytes(entry.record.args) for entry in store.events()]


def test_sensitive_fields_are_sealed_in_the_log_and_plain_in_the_state(ring: KeyRing) -> None:
    with Store.memory(schema=sealed(ring)) as store:
        store.commit(
            persona("p1", f"Ada {MARKER}"),
            memory(
                "m1", content=f"the {MARKER} recipe", summary=MARKER, name=MARKER, tags=[MARKER]
            ),
            ConversationStarted(conversation_id="c1", persona_id="p1", title=MARKER),
            ConversationMessageAdded(
                message_id="x1", conversation_id="c1", persona_id="p1", role="user", content=MARKER
            ),
            BookmarkCreated(bookmark_id="b1", persona_id="p1", name="b", tags=[MARKER]),
        )
        assert all(MARKER.encode() not in args for args in logged_args(store))
        assert b'"memory_id":"m1"' in logged_args(store)[1]  # the rest stays readable
        assert store.query("SELECT content FROM memories")[0].content == f"the {MARKER} recipe"
        assert store.query("SELECT name FROM personas")[0].name == f"Ada {MARKER}"
        # Replaying the log opens them again: the same state.
        before = store.state_hash()
        assert store.rebuild() == 5
        assert store.state_hash() == before


def test_sealing_leaves_a_field_sealed_already_as_it_is(ring: KeyRing) -> None:
    codec = FieldCodec(ring)
    args = SCHEMA.encode(memory("m1", content=MARKER, summary="plain"))[2]
    once = msgspec.json.decode(codec.seal("e1", "v1.MemoryAdded", args))
    partly = msgspec.json.encode({**once, "summary": "plain"})
    twice = msgspec.json.decode(codec.seal("e1", "v1.MemoryAdded", partly))
    assert twice["content"] == once["content"]
    decoded = SCHEMA.with_codec(codec).decode(
        "v1.MemoryAdded", msgspec.json.encode(twice), event_id="e1"
    )
    assert (decoded.content, decoded.summary) == (MARKER, "plain")


def test_a_sealed_value_does_not_open_in_another_event(ring: KeyRing) -> None:
    codec = FieldCodec(ring)
    store = Store.memory(schema=sealed(ring))
    first, second = store.commit(persona("p1"), memory("m1", content=MARKER), memory("m2"))[1:]
    moved = msgspec.json.decode(bytes(second.args))
    moved["content"] = msgspec.json.decode(bytes(first.args))["content"]
    with pytest.raises(EventValidationError, match="does not open for event"):
        codec.unseal(second.id, second.name, msgspec.json.encode(moved))
    assert codec.unseal(first.id, first.name, bytes(first.args))  # in its own event it opens
    store.close()


def test_sizes_are_padded_to_buckets(ring: KeyRing) -> None:
    codec = FieldCodec(ring)
    sizes = set()
    for text in ("a", "a few words", "x" * 50):
        args = SCHEMA.encode(memory("m1", content=text))[2]
        envelope = msgspec.json.decode(codec.seal("e1", "v1.MemoryAdded", args))["content"]
        sizes.add(len(envelope["data"]))
    assert len(sizes) == 1  # three lengths, one ciphertext size
    assert [bucket(n) for n in (0, 60, 61, 500)] == [64, 64, 128, 512]


def test_events_written_before_encryption_are_read_as_they_are(ring: KeyRing) -> None:
    plain = Store.memory()
    records = plain.commit(persona("p1"), memory("m1", content=MARKER))
    with Store.memory(schema=sealed(ring)) as store:
        store.ingest(records)
        assert store.query("SELECT content FROM memories")[0].content == MARKER
    plain.close()


def test_an_erased_persona_is_unreadable_and_the_others_stay(ring: KeyRing) -> None:
    with Store.memory(schema=sealed(ring)) as store:
        store.commit(persona("p1"), memory("m1", content=MARKER))
        store.commit(persona("p2"), memory("m2", persona_id="p2", content="kept"))
        store.commit(MemoryUpdated(memory_id="m1", persona_id="p1", content=MARKER + "!"))
        ring.erase("p1")
        m1 = list(store.events())[1].record
        with pytest.raises(KeyErasedError, match="is erased: it cannot be read"):
            store.schema.decode(m1.name, bytes(m1.args), event_id=m1.id)
        store.rebuild()
        assert [r.id for r in store.query("SELECT id FROM memories")] == ["m2"]
        refused = [e.error for e in store.events() if e.error]
        assert len(refused) == 3
        assert all("erased" in str(e) for e in refused)


def test_the_sync_server_checks_and_keeps_only_ciphertext(ring: KeyRing, tmp_path: Path) -> None:
    server_dir = tmp_path / "server"
    server_dir.mkdir()
    database = ServerDatabase.open(server_dir / "sync-server.db")
    hub = Hub(database.log, None, poll_interval=0.05)

    async def push() -> None:
        async with asyncio.timeout(30), serving(hub) as url:
            store = Store.memory(schema=sealed(ring), sync=True)
            store.commit(persona("p1"), memory("m1", content=MARKER, summary=MARKER))
            client = SyncClient(store, websocket_connector(sync_url(url)), store_id="s")
            client.start()
            await client.wait_until(lambda s: s.level)
            await client.stop()
            assert store.pending_count == 0  # the server accepted the sealed events
            store.close()

    asyncio.run(push())
    database.close()
    files = [p for p in server_dir.rglob("*") if p.is_file()]
    assert files
    assert not [p.name for p in files if MARKER.encode() in p.read_bytes()]


def test_an_event_at_its_longest_still_passes_the_servers_check(ring: KeyRing) -> None:
    codec = FieldCodec(ring)
    room = MAX_ARGS_BYTES - len(SCHEMA.encode(memory("m1", content="x"))[2])
    event = memory("m1", content="語" * (room // 3) + "x" * (room % 3 + 1))
    name, _, args = SCHEMA.encode(event)
    assert len(args) == MAX_ARGS_BYTES
    sealed = codec.seal("e1", name, args)
    SCHEMA.check(name, sealed)
    assert len(sealed) <= MAX_EVENT_BYTES


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("persona_id", "p\x00", "must not contain the NUL character"),
        ("tags", ["a\x00"], "must not contain the NUL character"),
        ("occurred_at", "0001-01-01T00:00:00Z", "must lie between 0001-01-02 and 9999-12-30"),
    ],
)
def test_the_servers_check_holds_a_sealed_events_plain_fields_to_the_limits(
    ring: KeyRing, field: str, value: object, problem: str
) -> None:
    # The sync server has no keys: it checks the fields left plain, and they must keep
    # to what every backend can store, as a plain event's do.
    name, _, args = SCHEMA.encode(memory("m1", content=MARKER))
    sealed = msgspec.json.decode(FieldCodec(ring).seal("e1", name, args))
    SCHEMA.check(name, msgspec.json.encode(sealed))
    with pytest.raises(EventValidationError, match=problem):
        SCHEMA.check(name, msgspec.json.encode({**sealed, field: value}))


@pytest.mark.parametrize(
    ("event", "field"),
    [(persona("p1", MARKER), "name"), (memory("m1", tags=[MARKER]), "tags")],
)
def test_a_field_sealed_since_a_later_version_may_be_plain_beside_sealed_ones(
    ring: KeyRing, event: object, field: str
) -> None:
    # Events written before a persona's name and the tags were sealed hold them plain
    # and their other sensitive fields sealed: the server takes them, the device opens them.
    codec = FieldCodec(ring)
    name, _, args = SCHEMA.encode(event)
    sealed = msgspec.json.decode(codec.seal("e1", name, args))
    older = msgspec.json.encode({**sealed, field: msgspec.json.decode(args)[field]})
    SCHEMA.check(name, older)
    assert SCHEMA.with_codec(codec).decode(name, older, event_id="e1") == event
    with pytest.raises(EventValidationError, match="must not contain the NUL"):
        SCHEMA.check(
            name, msgspec.json.encode({**sealed, field: "a\x00" if field == "name" else ["a\x00"]})
        )


def test_an_event_with_one_sensitive_field_plain_counts_as_plaintext(ring: KeyRing) -> None:
    with Store.memory(schema=sealed(ring)) as store:
        store.commit(
            persona("p1", MARKER),
            memory("m1"),
            PersonaUpdated(persona_id="p1", memory=MemoryConfig()),
        )
        records = [entry.record for entry in store.events()]
    assert content_events(records, "p1") == (2, 0)  # the update holds no content
    args = msgspec.json.decode(bytes(records[0].args))
    older = msgspec.json.encode({**args, "name": MARKER})
    records[0] = msgspec.structs.replace(records[0], args=msgspec.Raw(older))
    assert content_events(records, "p1") == (1, 1)


def test_the_key_ring_serves_threads_at_once(ring: KeyRing) -> None:
    failures: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                key_id, _ = ring.current(f"p{(n + i) % 5}")
                assert ring.key(key_id) is not None
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_a_sealed_event_moved_to_another_persona_does_not_open(ring: KeyRing) -> None:
    codec = FieldCodec(ring)
    args = SCHEMA.encode(memory("m1", content=MARKER))[2]
    sealed = msgspec.json.decode(codec.seal("e1", "v1.MemoryAdded", args))
    sealed["persona_id"] = "p2"  # a server editing who it belongs to
    with pytest.raises(EventValidationError, match="does not open"):
        codec.unseal("e1", "v1.MemoryAdded", msgspec.json.encode(sealed))
