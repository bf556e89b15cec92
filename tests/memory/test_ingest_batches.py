"""Conversation ingest in batches: a commit per batch, kept when a later one fails, and
resumed by the next run with every memory and link made once."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from pjai.errors import PrivacyError, SqlUnavailableError
from pjai.hybrid import HybridDatabaseManager
from pjai.memory import MemorySystem
from pjai.memory import conversations as ingest
from pjai.memory.backend import Backend
from pjai.memory.conversations import Ingested, ingest_conversation, memory_id_of
from pjai.schema import (
    ConversationMessageAdded,
    ConversationStarted,
    PersonaCreated,
    PersonaUpdated,
)
from pjai.schema.event import Event
from pjai.schema.fields import CONTENT_MAX_LENGTH
from pjai.schema.personas import MemoryConfig, PrivacySettings, TierCapacities
from pjai.schema.records import EventRecord
from pjai.schema.tables import memories, memory_links
from pjai.store import LiveQuery, Store
from pjai.store.query import Params, Query, Row
from tests.helpers import persona

START = datetime(2026, 3, 14, 9, tzinfo=UTC)

# Sent in this order; two pairs share a time, one of them across the first page's end.
SENT = [("m1", 0), ("m2", 1), ("m3", 1), ("m4", 2), ("m5", 2)]
IDS = [memory_id_of(message_id) for message_id, _ in SENT]


def message(message_id: str, minutes: int, content: str = "") -> ConversationMessageAdded:
    return ConversationMessageAdded(
        message_id=message_id,
        conversation_id="c1",
        persona_id="p1",
        role="user" if message_id in ("m1", "m3", "m5") else "assistant",
        content=content or f"what {message_id} said",
        sent_at=START + timedelta(minutes=minutes),
    )


def talk(backend: Backend, who: PersonaCreated | None = None) -> None:
    backend.commit(
        who or persona(),
        ConversationStarted(conversation_id="c1", persona_id="p1", started_at=START),
        # Committed out of the order they were sent.
        *(message(i, minutes) for i, minutes in reversed(SENT)),
    )


class Commits:
    """A backend that counts its commits (``sizes``: events in each) and fails the one
    numbered ``fail_at`` (from 1), as a SQL primary that went away would."""

    def __init__(self, backend: Backend, *, fail_at: int | None = None) -> None:
        self.backend = backend
        self.fail_at = fail_at
        self.sizes: list[int] = []
        self.tried = 0

    def commit(self, *events: Event) -> list[EventRecord]:
        self.tried += 1
        if self.tried == self.fail_at:
            raise SqlUnavailableError("the SQL primary went away (injected)")
        records = self.backend.commit(*events)
        self.sizes.append(len(events))
        return records

    def query(self, query: Query, params: Params = None) -> list[Row]:
        return self.backend.query(query, params)

    def live(self, query: Query, params: Params = None) -> LiveQuery:
        return self.backend.live(query, params)


def made(backend: Backend) -> list[str]:
    rows = backend.query(select(memories.c.id).order_by(memories.c.occurred_at, memories.c.id))
    return [r.id for r in rows]


def temporal_links(backend: Backend) -> list[tuple[str, str]]:
    """Every temporal link, as many times as it is there."""
    rows = backend.query(
        select(memory_links.c.source_id, memory_links.c.target_id).where(
            memory_links.c.kind == "temporal"
        )
    )
    return sorted((r.source_id, r.target_id) for r in rows)


@pytest.fixture
def batches_of_two(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest, "INGEST_BATCH", 2)


@pytest.mark.usefixtures("batches_of_two")
def test_a_conversation_longer_than_a_batch_is_committed_batch_by_batch(
    reader: HybridDatabaseManager,
) -> None:
    talk(reader)
    counted = Commits(reader)
    assert ingest_conversation(counted, "c1") == Ingested("c1", 5, 0)
    # Each batch: its memories, and the links to them (the first has none).
    assert counted.sizes == [3, 4, 2]
    assert made(reader) == IDS
    assert temporal_links(reader) == sorted(itertools.pairwise(IDS))


def test_a_batch_of_long_messages_is_committed_in_parts(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    talk(store)
    monkeypatch.setattr(ingest, "INGEST_BATCH_TEXT", 1)  # any memory's text passes it
    counted = Commits(store)
    assert ingest_conversation(counted, "c1") == Ingested("c1", 5, 0)
    assert counted.sizes == [1, 2, 2, 2, 2]  # a memory and the link to it in each
    assert temporal_links(store) == sorted(itertools.pairwise(IDS))


class Reads(Commits):
    """A backend that also keeps the ids of the messages each read of their text
    returned: the pages of an ingest."""

    def __init__(self, backend: Backend, *, fail_at: int | None = None) -> None:
        super().__init__(backend, fail_at=fail_at)
        self.pages: list[list[str]] = []

    def query(self, query: Query, params: Params = None) -> list[Row]:
        rows = super().query(query, params)
        if rows and "content" in rows[0]._fields and "role" in rows[0]._fields:
            self.pages.append([r.id for r in rows])
        return rows


def long_talk(backend: Backend) -> None:
    """m1 alone passes 30 characters; m2, m3 and m4 reach them together."""
    lengths = {"m1": 31, "m2": 5, "m3": 5, "m4": 20, "m5": 5}
    backend.commit(
        persona(),
        ConversationStarted(conversation_id="c1", persona_id="p1", started_at=START),
        *(message(i, minutes, "x" * lengths[i]) for i, minutes in reversed(SENT)),
    )


def test_a_page_of_long_messages_ends_where_their_text_reaches_the_bound(
    reader: HybridDatabaseManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_talk(reader)
    monkeypatch.setattr(ingest, "INGEST_PAGE_TEXT", 30)
    read = Reads(reader)
    assert ingest_conversation(read, "c1") == Ingested("c1", 5, 0)
    assert read.pages == [["m1"], ["m2", "m3", "m4"], ["m5"]]
    # A commit per page: its memories, and the links to them (the first has none).
    assert read.sizes == [1, 6, 2]
    assert made(reader) == IDS
    assert temporal_links(reader) == sorted(itertools.pairwise(IDS))


def test_pages_bounded_by_text_and_by_count_resume_with_nothing_lost_or_made_twice(
    reader: HybridDatabaseManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_talk(reader)
    monkeypatch.setattr(ingest, "INGEST_PAGE_TEXT", 30)
    monkeypatch.setattr(ingest, "INGEST_BATCH", 2)
    with pytest.raises(SqlUnavailableError, match="went away"):
        ingest_conversation(Reads(reader, fail_at=3), "c1")
    assert made(reader) == IDS[:3]  # the pages m1, then m2 m3 (two at most)
    resumed = Reads(reader)
    assert ingest_conversation(resumed, "c1") == Ingested("c1", 2, 3)
    assert resumed.pages == [["m1"], ["m2", "m3"], ["m4", "m5"]]
    assert made(reader) == IDS
    assert temporal_links(reader) == sorted(itertools.pairwise(IDS))
    counts = reader.query(select(func.count().label("n")).select_from(memories))
    assert counts[0].n == 5


class SentMeanwhile(Commits):
    """A backend on which the message ``sent`` is added by another writer right after
    the ingest first reads the messages' lengths."""

    def __init__(self, backend: Backend, sent: ConversationMessageAdded) -> None:
        super().__init__(backend)
        self.sent: ConversationMessageAdded | None = sent

    def query(self, query: Query, params: Params = None) -> list[Row]:
        rows = super().query(query, params)
        if self.sent is not None and rows and "chars" in rows[0]._fields:
            self.backend.commit(self.sent)
            self.sent = None
        return rows


def test_a_message_sent_meanwhile_before_the_last_of_a_page_leaves_none_unread(
    reader: HybridDatabaseManager,
) -> None:
    # All the messages fit in one page: one sent meanwhile among them takes the place
    # of the last, which must still be read.
    talk(reader)
    between = message("m2a", 1)  # after m2, before m3: same time, the id between
    assert ingest_conversation(SentMeanwhile(reader, between), "c1") == Ingested("c1", 6, 0)
    ids = [memory_id_of(i) for i in ("m1", "m2", "m2a", "m3", "m4", "m5")]
    assert made(reader) == ids
    assert temporal_links(reader) == sorted(itertools.pairwise(ids))


@pytest.mark.usefixtures("batches_of_two")
def test_a_failed_batch_keeps_the_ones_before_and_the_next_run_makes_the_rest(
    reader: HybridDatabaseManager,
) -> None:
    talk(reader)
    with pytest.raises(SqlUnavailableError, match="went away"):
        ingest_conversation(Commits(reader, fail_at=2), "c1")
    assert made(reader) == IDS[:2]
    assert temporal_links(reader) == [(IDS[0], IDS[1])]
    resumed = Commits(reader)
    assert ingest_conversation(resumed, "c1") == Ingested("c1", 3, 2)
    # The first batch of the second run is linked from the last memory of the first.
    assert resumed.sizes == [4, 2]
    assert made(reader) == IDS
    assert temporal_links(reader) == sorted(itertools.pairwise(IDS))
    counts = reader.query(select(func.count().label("n")).select_from(memories))
    assert counts[0].n == 5


@pytest.mark.usefixtures("batches_of_two")
def test_the_totals_count_every_batch(store: Store) -> None:
    talk(store)
    ingest_conversation(store, "c1")
    store.commit(
        message("m6", 3, "x" * CONTENT_MAX_LENGTH),  # synced: too long to be a memory
        message("m7", 4),
        message("m8", 5),
    )
    # Pages: m1 m2 and m3 m4 made before, m5 made before and m6 refused, m7 m8 new.
    done = ingest_conversation(store, "c1")
    assert (done.conversation_id, done.added, done.skipped) == ("c1", 2, 5)
    assert [r.message_id for r in done.refused] == ["m6"]
    new = [memory_id_of("m7"), memory_id_of("m8")]
    assert made(store) == [*IDS, *new]
    assert temporal_links(store) == sorted([*itertools.pairwise(IDS), (new[0], new[1])])


class TurnsCollectionOff(Commits):
    """A backend on which the persona's owner turns data collection off right after
    the first commit."""

    def commit(self, *events: Event) -> list[EventRecord]:
        records = super().commit(*events)
        if len(self.sizes) == 1:
            off = PrivacySettings(data_collection=False)
            self.backend.commit(PersonaUpdated(persona_id="p1", privacy=off))
        return records


@pytest.mark.usefixtures("batches_of_two")
def test_the_persona_is_checked_again_before_each_batch(store: Store) -> None:
    talk(store)
    with pytest.raises(PrivacyError, match="data collection off"):
        ingest_conversation(TurnsCollectionOff(store), "c1")
    assert made(store) == IDS[:2]


def auto_optimizing() -> PersonaCreated:
    # Warm holds one memory: each batch of new warm memories would start a run.
    small = MemoryConfig(capacities=TierCapacities(hot=1, warm=1, cold=100))
    return PersonaCreated(persona_id="p1", name="P1", memory=small)


@pytest.mark.usefixtures("batches_of_two")
def test_the_memory_system_runs_the_optimizer_once_after_the_last_batch(store: Store) -> None:
    talk(store, auto_optimizing())
    system = MemorySystem(store)
    with system.optimizations() as runs:
        assert system.ingest("c1") == Ingested("c1", 5, 0)
    # One run, on all five memories: it moved some out of warm, which holds one.
    assert len(runs) == 1
    assert len(runs[0].moves) >= 4
    assert {m.memory_id for m in runs[0].moves} <= set(IDS)


@pytest.mark.usefixtures("batches_of_two")
def test_after_a_failed_ingest_the_optimizer_looks_at_the_batches_kept(store: Store) -> None:
    talk(store, auto_optimizing())
    system = MemorySystem(Commits(store, fail_at=2))
    with system.optimizations() as runs, pytest.raises(SqlUnavailableError):
        system.ingest("c1")
    assert made(store) == IDS[:2]
    # The two memories kept are over warm's capacity of one: a run moved them.
    assert len(runs) == 1
    assert runs[0].moves
    assert {m.memory_id for m in runs[0].moves} <= set(IDS[:2])
