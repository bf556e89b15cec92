"""Conversation ingest: one memory per message, when it was sent, and only once."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from sqlalchemy import select

from pjai.app.reads import conversations as conversation_reads
from pjai.errors import EventValidationError, NotFoundError, PrivacyError, QueryError
from pjai.hybrid import HybridDatabaseManager
from pjai.memory.conversations import (
    Ingested,
    add_message,
    ingest_conversation,
    memory_id_of,
)
from pjai.memory.search import SearchFilter, search
from pjai.schema import (
    ConversationMessageAdded,
    ConversationStarted,
    MemoryDeleted,
    MemoryUpdated,
    PersonaDeleted,
    PersonaUpdated,
)
from pjai.schema.fields import CONTENT_MAX_LENGTH
from pjai.schema.personas import PrivacySettings
from pjai.schema.tables import memories as memories_table
from pjai.store import Store
from tests.helpers import persona

START = datetime(2026, 3, 14, 9, tzinfo=UTC)


def message(message_id: str, role: str, content: str, minutes: int) -> ConversationMessageAdded:
    return ConversationMessageAdded(
        message_id=message_id,
        conversation_id="c1",
        persona_id="p1",
        role=role,
        content=content,
        sent_at=START + timedelta(minutes=minutes),
    )


@pytest.fixture
def talk(store: Store) -> Store:
    """A conversation of three messages, committed out of order."""
    store.commit(
        persona(),
        ConversationStarted(
            conversation_id="c1", persona_id="p1", title="Gardening", started_at=START
        ),
        message("q1", "user", "When should tomatoes be planted?", 0),
        message("q2", "user", "And peppers?", 5),
        message("a1", "assistant", "After the last frost, in late spring.", 1),
    )
    return store


def memories(store: Store) -> list[dict[str, object]]:
    rows = store.query(
        "SELECT id, persona_id, name, content, summary, type, tags, tier, importance, occurred_at "
        "FROM memories ORDER BY occurred_at, id"
    )
    return [r._asdict() for r in rows]


def test_each_message_becomes_a_memory_when_it_was_sent(talk: Store) -> None:
    assert ingest_conversation(talk, "c1") == Ingested("c1", 3, 0)
    found = memories(talk)
    assert [m["id"] for m in found] == [memory_id_of(i) for i in ("q1", "a1", "q2")]
    assert [m["occurred_at"] for m in found] == [
        START,
        START + timedelta(minutes=1),
        START + timedelta(minutes=5),
    ]
    first, reply, _ = found
    assert first == {
        "id": "q1:memory",
        "persona_id": "p1",
        "name": "Gardening",
        "content": "user: When should tomatoes be planted?",
        "summary": "",
        "type": "conversation",
        "tags": ["conversation", "user"],
        "tier": "warm",
        "importance": 0.5,
        "occurred_at": START,
    }
    assert reply["summary"] == "user: When should tomatoes be planted?"
    assert reply["tags"] == ["conversation", "assistant"]


def test_importance_and_tier_are_chosen_by_the_caller(talk: Store) -> None:
    with pytest.raises(EventValidationError, match=r"'importance': expected a number <= 1\.0"):
        ingest_conversation(talk, "c1", importance=3)  # the caller's error, no message's
    assert memories(talk) == []
    ingest_conversation(talk, "c1", importance=0.9, tier="hot")
    assert {(m["importance"], m["tier"]) for m in memories(talk)} == {(0.9, "hot")}


def test_a_second_ingest_adds_only_new_messages(talk: Store) -> None:
    ingest_conversation(talk, "c1")
    events = len(list(talk.events()))
    assert ingest_conversation(talk, "c1") == Ingested("c1", 0, 3)
    assert len(list(talk.events())) == events
    talk.commit(message("a2", "assistant", "Peppers a little later.", 6))
    assert ingest_conversation(talk, "c1") == Ingested("c1", 1, 3)
    last = memories(talk)[-1]
    assert (last["id"], last["summary"]) == ("a2:memory", "user: And peppers?")


def test_a_memory_whose_type_was_changed_is_not_made_again(talk: Store) -> None:
    ingest_conversation(talk, "c1")
    talk.commit(MemoryUpdated(memory_id="a1:memory", persona_id="p1", type="note"))
    talk.commit(message("q3", "user", "And beans?", 9))
    assert ingest_conversation(talk, "c1") == Ingested("c1", 1, 3)


def test_each_new_memory_is_linked_from_the_one_before(talk: Store) -> None:
    ingest_conversation(talk, "c1")

    def links() -> list[tuple[str, str]]:
        rows = talk.query("SELECT source_id, target_id FROM memory_links WHERE kind = 'temporal'")
        return sorted((r.source_id, r.target_id) for r in rows)

    ids = [m["id"] for m in memories(talk)]
    assert links() == sorted(itertools.pairwise(ids))
    talk.commit(MemoryDeleted(memory_id=ids[-1], persona_id="p1"))
    talk.commit(message("a2", "assistant", "Peppers a little later.", 6))
    ingest_conversation(talk, "c1")  # its predecessor is deleted: no link to it
    assert links() == sorted(itertools.pairwise(ids))


def test_a_question_finds_its_answer(talk: Store) -> None:
    ingest_conversation(talk, "c1")
    hits = search(talk, "planting tomatoes", SearchFilter(persona_id="p1"))
    assert hits[0].memory_id == "q1:memory"
    assert "a1:memory" in [h.memory_id for h in hits]


def test_a_conversation_without_messages_adds_nothing(store: Store) -> None:
    store.commit(persona(), ConversationStarted(conversation_id="c0", persona_id="p1"))
    assert ingest_conversation(store, "c0") == Ingested("c0", 0, 0)


def test_unknown_conversation(store: Store) -> None:
    with pytest.raises(QueryError, match="no conversation 'ghost'"):
        ingest_conversation(store, "ghost")


def test_a_deleted_persona_s_conversation_takes_no_message(talk: Store) -> None:
    talk.commit(PersonaDeleted(persona_id="p1"))
    with pytest.raises(NotFoundError, match=r"conversation 'c1' is of P1 \(p1\), which is deleted"):
        add_message(talk, "c1", "user", "Still there?")
    count = talk.query("SELECT count(*) AS n FROM conversation_messages")[0].n
    assert count == 3


def test_a_message_too_long_to_become_a_memory_is_refused(talk: Store) -> None:
    longest = CONTENT_MAX_LENGTH - len("assistant: ")
    with pytest.raises(EventValidationError, match=f"at most {longest:,} characters"):
        add_message(talk, "c1", "assistant", "x" * (longest + 1))
    add_message(talk, "c1", "assistant", "x" * longest)
    assert ingest_conversation(talk, "c1").added == 4


def test_a_sender_name_with_spaces_at_its_ends_is_tagged_without_them(store: Store) -> None:
    store.commit(persona(), ConversationStarted(conversation_id="c1", persona_id="p1"))
    store.commit(message("m1", " Bob  Smith ", "Hello", 0), message("m2", " \t", "Hi", 1))
    assert ingest_conversation(store, "c1").added == 2
    assert [m["tags"] for m in memories(store)] == [["conversation", "Bob Smith"], ["conversation"]]


def test_with_data_collection_off_no_memory_is_made_of_a_conversation(talk: Store) -> None:
    off = PrivacySettings(data_collection=False)
    talk.commit(PersonaUpdated(persona_id="p1", privacy=off))
    with pytest.raises(PrivacyError, match=r"P1 \(p1\) has data collection off"):
        ingest_conversation(talk, "c1")
    assert memories(talk) == []
    talk.commit(PersonaUpdated(persona_id="p1", privacy=PrivacySettings()))
    assert ingest_conversation(talk, "c1").added == 3


def test_a_memory_holding_restricted_data_in_its_summary_or_name_is_tagged(
    store: Store,
) -> None:
    # A memory's summary is the message before it and its name the title: restricted
    # data there must tag it too, or the retention of restricted memories misses it.
    store.commit(
        persona(),
        ConversationStarted(conversation_id="c1", persona_id="p1", started_at=START),
        message("q1", "user", "My address is ada@example.com", 0),
        message("a1", "assistant", "Noted.", 1),
        ConversationStarted(
            conversation_id="c2", persona_id="p1", title="Call +44 20 7946 0958", started_at=START
        ),
        msgspec.structs.replace(message("q2", "user", "Hello", 2), conversation_id="c2"),
    )
    ingest_conversation(store, "c1")
    ingest_conversation(store, "c2")
    assert [(m["id"], m["tags"]) for m in memories(store)] == [
        ("q1:memory", ["conversation", "user", "restricted"]),
        ("a1:memory", ["conversation", "assistant", "restricted"]),
        ("q2:memory", ["conversation", "user", "restricted"]),
    ]


def test_a_message_id_of_any_valid_length_becomes_a_memory(reader: HybridDatabaseManager) -> None:
    # Message ids come from peers and imports, up to an id's 128 characters: a long one's
    # memory has an id of its own, within that bound; a short one's stays as it was.
    longest, long_accented = "m" * 128, "é" * 122
    reader.commit(
        persona(),
        ConversationStarted(conversation_id="c1", persona_id="p1", started_at=START),
        message("q1", "user", "When should tomatoes be planted?", 0),
        message(longest, "assistant", "After the last frost.", 1),
        message(long_accented, "user", "And peppers?", 2),
    )
    assert ingest_conversation(reader, "c1") == Ingested("c1", 3, 0)
    ids = [memory_id_of(i) for i in ("q1", longest, long_accented)]
    assert ids[0] == "q1:memory"
    assert all(len(i) <= 128 for i in ids)
    assert len(set(ids)) == 3
    rows = reader.query(select(memories_table.c.id, memories_table.c.content))
    assert sorted(r.id for r in rows) == sorted(ids)
    assert ingest_conversation(reader, "c1") == Ingested("c1", 0, 3)
    made = conversation_reads.memories_made(reader, "c1").result
    assert [(r.messages, r.made) for r in made] == [(3, 3)]


def test_a_synced_message_that_cannot_become_a_memory_is_skipped_and_named(
    talk: Store,
) -> None:
    # Messages from another instance or an import reach the log without the checks of
    # add_message: a message whose memory would be too long is left out, and two long
    # messages in a row (a reply's memory holds the question as its summary) shorten
    # the summary; every other message becomes a memory.
    talk.commit(
        message("a2", "assistant", "x" * CONTENT_MAX_LENGTH, 6),
        message("q3", "user", "語" * 600_000, 7),
        message("a3", "assistant", "語" * 600_000, 8),
        message("q4", "user", "Thanks!", 9),
    )
    done = ingest_conversation(talk, "c1")
    assert (done.added, done.skipped) == (6, 0)
    assert [r.message_id for r in done.refused] == ["a2"]
    assert "over the 1,000,000 a memory may hold" in done.refused[0].reason
    found = {m["id"]: m for m in memories(talk)}
    assert "a2:memory" not in found
    question = str(found["q3:memory"]["summary"])  # a2's, which is too long to keep whole
    assert question.startswith("assistant: xxx")
    assert len(question) < len("assistant: ") + CONTENT_MAX_LENGTH
    reply = found["a3:memory"]
    assert str(reply["summary"]).startswith("user: 語")
    assert len(str(reply["summary"])) < len("user: ") + 600_000
    assert found["q4:memory"]["summary"] == "assistant: " + "語" * 600_000
    again = ingest_conversation(talk, "c1")
    assert (again.added, again.skipped, [r.message_id for r in again.refused]) == (0, 6, ["a2"])


def test_a_deleted_persona_s_conversation_makes_no_memory(talk: Store) -> None:
    talk.commit(PersonaDeleted(persona_id="p1"))
    talk.commit(message("q3", "user", "Still there?", 9))  # synced: the log takes it
    with pytest.raises(NotFoundError, match=r"conversation 'c1' is of P1 \(p1\), which is deleted"):
        ingest_conversation(talk, "c1")
    assert memories(talk) == []
