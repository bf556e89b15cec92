"""The codec seam: arguments are stored as the codec leaves them, everywhere, and a
commit is decoded and materialized once."""

from __future__ import annotations

import base64
from pathlib import Path

import msgspec
import pytest

from pjai.hybrid import HybridDatabaseManager
from pjai.schema import ROOT, SCHEMA, MemoryUpdated
from pjai.schema.codec import History
from pjai.schema.records import stamp
from pjai.schema.types import utc_now
from tests.helpers import memory, persona


class Wrapping:
    """A reversible codec that hides the arguments in a base64 string and counts."""

    name = "wrapping"

    def __init__(self) -> None:
        self.unsealed = 0

    def seal(
        self, event_id: str, event_name: str, args: bytes, history: History | None = None
    ) -> bytes:
        return msgspec.json.encode({"id": event_id, "sealed": base64.b64encode(args).decode()})

    def prove(self, event_id: str, event_name: str, stored: bytes) -> bytes:
        return stored

    def unseal(self, event_id: str, event_name: str, stored: bytes) -> bytes:
        self.unsealed += 1
        sealed = msgspec.json.decode(stored)
        assert sealed["id"] == event_id  # sealed for this event, and no other
        return base64.b64decode(sealed["sealed"])


def test_a_record_is_sealed_with_its_id_and_decodes_through_the_codec() -> None:
    schema = SCHEMA.with_codec(Wrapping())
    name, payload, args = schema.encode(persona("p1", "Ada"))
    assert args == msgspec.json.encode(payload)  # sealing waits for the record's id
    (record,) = stamp(
        [(name, args)],
        after=ROOT,
        generation=0,
        client_id="c",
        session_id="c",
        at=utc_now(),
        codec=schema.codec,
    )
    assert b"Ada" not in bytes(record.args)
    assert schema.decode(name, bytes(record.args), event_id=record.id) == payload
    assert schema.materialize(record).payload == payload
    with pytest.raises(TypeError, match="needs the event's id"):
        schema.decode(name, bytes(record.args))
    assert SCHEMA.codec.name == "plain"  # the shared schema is left as it was


def test_logs_and_journal_keep_sealed_arguments(data_dir: Path, sql_url: str) -> None:
    codec = Wrapping()
    schema = SCHEMA.with_codec(codec)
    with HybridDatabaseManager.open(
        data_dir, sql_urls=[sql_url], environ={}, schema=schema
    ) as manager:
        manager.commit(persona("p1", "Ada"), memory("m1", content="the secret garden"))
        # The commit handed its materialized events to SQL: nothing was decoded again.
        assert codec.unsealed == 0
        store = manager.store
        assert store is not None
        logged = [bytes(entry.record.args) for entry in store.events()]
        journalled = [bytes(record.args) for record in manager.shards.journal()]
        assert logged == journalled
        assert all(b"secret" not in args and b"Ada" not in args for args in logged)
        # The tables on both sides hold the values.
        assert store.query("SELECT content FROM memories")[0].content == "the secret garden"
        found = manager.memories.get("m1")
        assert found is not None
        assert found.content == "the secret garden"

        # Everything that reads the log back goes through the codec.
        assert store.rebuild() == 2
        assert manager.repair("sql").events == 2
        assert codec.unsealed >= 4
        manager.set_flag("use_livestore", False)
        manager.commit(MemoryUpdated(memory_id="m1", persona_id="p1", content="a new secret"))
        manager.set_flag("use_livestore", True)
        assert manager.verify().equal
        found = manager.memories.get("m1")
        assert found is not None
        assert found.content == "a new secret"
