"""Event evolution: unknown names are kept and skipped; old payloads are upcast."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, Text

from pjai.errors import UnknownEventWarning
from pjai.schema import Context, Event, Schema, Upcaster
from pjai.schema.fields import Count
from pjai.schema.ops import Insert, Op
from pjai.schema.types import utc_now
from pjai.store import ROOT, EventRecord, Position, Store

metadata = MetaData()
notes = Table(
    "notes",
    metadata,
    Column("id", String, primary_key=True),
    Column("text", Text, nullable=False),
    Column("stars", Integer, nullable=False),
)


class NoteAddedV1(Event, frozen=True, kw_only=True):
    NAME = "v1.NoteAdded"
    CONFLICT = "precondition"
    note_id: str
    text: str

    def materialize(self, ctx: Context) -> Sequence[Op]:
        return [Insert("notes", {"id": self.note_id, "text": self.text, "stars": 0})]


class NoteAddedV2(Event, frozen=True, kw_only=True):
    NAME = "v2.NoteAdded"
    CONFLICT = "precondition"
    note_id: str
    body: str
    stars: Count

    def materialize(self, ctx: Context) -> Sequence[Op]:
        return [Insert("notes", {"id": self.note_id, "text": self.body, "stars": self.stars})]


def v1_to_v2(args: dict[str, Any]) -> dict[str, Any]:
    return {"note_id": args["note_id"], "body": args["text"], "stars": 3}


OLD = Schema(metadata, [NoteAddedV1])
NEW = Schema(
    metadata, [NoteAddedV2], upcasters=[Upcaster("v1.NoteAdded", "v2.NoteAdded", v1_to_v2)]
)


def notes_in(store: Store) -> list[tuple[str, str, int]]:
    return [tuple(r) for r in store.query("SELECT id, text, stars FROM notes ORDER BY id")]


def test_old_payloads_are_upcast_on_rebuild(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with Store.open(path, schema=OLD) as store:
        store.commit(NoteAddedV1(note_id="n1", text="hello"))
    with Store.open(path, schema=NEW) as store:
        assert notes_in(store) == [("n1", "hello", 3)]
        store.commit(NoteAddedV2(note_id="n2", body="world", stars=5))
        logged = [(e.record.name, e.error) for e in store.events()]
        assert logged == [("v1.NoteAdded", None), ("v2.NoteAdded", None)]
        # The log keeps what was written; only the materialization is upcast.
        assert msgspec.json.decode(next(store.events()).record.args) == {
            "note_id": "n1",
            "text": "hello",
        }


def test_events_from_a_newer_version_are_kept_not_applied(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with Store.open(path, schema=NEW) as store:
        store.commit(NoteAddedV2(note_id="n1", body="new", stars=1))
    with pytest.warns(UnknownEventWarning, match=r"v2\.NoteAdded"):
        older = Store.open(path, schema=OLD)
    with older:
        assert notes_in(older) == []
        assert [(e.record.name, e.error) for e in older.events()] == [
            ("v2.NoteAdded", "event v2.NoteAdded: unknown to this version")
        ]
        older.commit(NoteAddedV1(note_id="n2", text="old"))
        assert notes_in(older) == [("n2", "old", 0)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with Store.open(path, schema=NEW) as store:  # back on the newer version: applied
            assert notes_in(store) == [("n1", "new", 1), ("n2", "old", 3)]


def test_unknown_upstream_events_are_kept_with_a_warning() -> None:
    record = EventRecord(
        id="e-future",
        name="v7.SomethingNew",
        args=msgspec.Raw(b'{"x": 1}'),
        position=Position(1),
        parent=ROOT,
        client_id="c",
        session_id="s",
        at=utc_now(),
    )
    with Store.memory(schema=NEW, sync=True) as store:
        with pytest.warns(UnknownEventWarning):
            result = store.rebase([record])
        assert result.applied == 1
        assert [(e.record.id, e.status) for e in store.events()] == [("e-future", "confirmed")]
        store.commit(NoteAddedV2(note_id="n1", body="b", stars=1))
        assert store.pending()[0].parent == Position(1)
