"""The privacy rules the optimizer enforces: restricted memories kept only as long as
their data class allows, and no memory kept past its session when a persona's
``privacy.memory_retention`` is off. They apply whether or not the persona
auto-optimizes, on every backend a query can run on."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pjai.app import Conversations, Memories, Personas
from pjai.app.reads.memories import optimize_preview
from pjai.errors import ConfigError, PrivacyError
from pjai.hybrid import HybridDatabaseManager
from pjai.memory import MemorySystem
from pjai.schema import ConversationStarted, MemoryFilter, MemoryImported
from pjai.schema.types import utc_now


def live_contents(manager: HybridDatabaseManager, persona_id: str) -> list[str]:
    rows = Memories(manager).list(MemoryFilter(persona_id=persona_id))
    return sorted(m.content for m in rows)


def added_days_ago(
    manager: HybridDatabaseManager, persona_id: str, memory_id: str, content: str, **fields: object
) -> None:
    """A memory of ``persona_id`` made ten days ago (imported with its times)."""
    long_ago = utc_now() - timedelta(days=10)
    manager.commit(
        MemoryImported(
            memory_id=memory_id,
            persona_id=persona_id,
            content=content,
            source="test",
            created_at=long_ago,
            updated_at=long_ago,
            **fields,  # type: ignore[arg-type]
        )
    )


def test_restricted_memories_are_deleted_after_their_class_retention(
    reader: HybridDatabaseManager,
) -> None:
    ada = Personas(reader).create(
        "Ada", sets=["memory.restricted_retention_days=30", "memory.auto_optimize=false"]
    )
    memories = Memories(reader)
    secret = memories.add(ada.id, "write to ada@example.org", tier="hot").memory
    memories.add(ada.id, "likes green tea")
    assert "restricted" in memories.get(secret.id).tags
    system = MemorySystem(reader)
    assert not system.privacy_due(ada.id)  # nothing is 30 days old yet
    later = utc_now() + timedelta(days=31)
    assert system.privacy_due(ada.id, now=later)
    report = system.optimize(ada.id, now=later, privacy_only=True)
    assert [(m.memory_id, m.action, m.reason) for m in report.moves] == [
        (secret.id, "deleted", "restricted")  # pinned to hot or not: the class rule wins
    ]
    assert report.deleted_for_privacy == 1
    assert live_contents(reader, ada.id) == ["likes green tea"]
    assert not system.privacy_due(ada.id, now=later)


def test_without_memory_retention_a_new_conversation_ends_the_last_session(
    reader: HybridDatabaseManager,
) -> None:
    ada = Personas(reader).create(
        "Ada", sets=["privacy.memory_retention=false", "memory.auto_optimize=false"]
    )
    grace = Personas(reader).create("Grace")  # keeps her memories
    memories, talks = Memories(reader), Conversations(reader)
    memories.add(ada.id, "before any conversation")
    memories.add(grace.id, "kept by grace")
    first = talks.start(ada.id, title="first")
    assert live_contents(reader, ada.id) == []  # made before this session: gone
    talks.say(first, "user", "I moved to Lisbon")
    memories.add(ada.id, "during the first session")
    assert live_contents(reader, ada.id) == ["during the first session"]
    talks.start(ada.id, title="second")
    assert live_contents(reader, ada.id) == []
    talks.start(grace.id, title="hers")
    assert live_contents(reader, grace.id) == ["kept by grace"]


def test_without_memory_retention_an_ended_session_s_talk_makes_no_memory(
    reader: HybridDatabaseManager,
) -> None:
    ada = Personas(reader).create("Ada", sets=["privacy.memory_retention=false"])
    memories, talks = Memories(reader), Conversations(reader)
    first = talks.start(ada.id, title="first")
    talks.say(first, "user", "I moved to Lisbon")
    second = talks.start(ada.id, title="second")
    talks.say(second, "user", "Hello again")
    with pytest.raises(PrivacyError, match=rf"conversation '{first}' is of an ended session"):
        memories.ingest(first)
    assert live_contents(reader, ada.id) == []
    assert memories.ingest(second).added == 1
    assert live_contents(reader, ada.id) == ["user: Hello again"]


def test_without_memory_retention_a_conversation_dated_ahead_begins_its_session_at_its_start(
    reader: HybridDatabaseManager,
) -> None:
    """A conversation whose start is still ahead (a synced device whose clock runs
    ahead, or a start given) ends no session before its time: until then the current
    session's memories stay, its talk can be ingested and its memories restored."""
    ada = Personas(reader).create(
        "Ada", sets=["privacy.memory_retention=false", "memory.auto_optimize=false"]
    )
    memories, talks, system = Memories(reader), Conversations(reader), MemorySystem(reader)
    current = talks.start(ada.id, title="current")
    memories.add(ada.id, "during the current session")
    dropped = memories.add(ada.id, "deleted by the user").memory
    memories.delete(dropped.id)
    ahead = utc_now() + timedelta(hours=1)
    system.commit(ConversationStarted(conversation_id="ahead", persona_id=ada.id, started_at=ahead))
    assert live_contents(reader, ada.id) == ["during the current session"]
    assert not system.privacy_due(ada.id)
    assert system.optimize(ada.id, privacy_only=True).moves == []
    assert optimize_preview(reader, ada.id).deleted_for_privacy == 0
    talks.say(current, "user", "Still here")
    assert memories.ingest(current).added == 1  # the current session is not over
    assert memories.restore(dropped.id).deleted_at is None
    assert len(live_contents(reader, ada.id)) == 3
    talks.say("ahead", "user", "From a clock that runs ahead")
    with pytest.raises(PrivacyError, match=r"conversation 'ahead' begins at .* after now"):
        memories.ingest("ahead")  # its memories would be deleted when it begins

    later = ahead + timedelta(minutes=1)  # the conversation has begun: a new session
    assert system.privacy_due(ada.id, now=later)
    assert optimize_preview(reader, ada.id, now=later).deleted_for_privacy == 3
    report = system.optimize(ada.id, now=later, privacy_only=True)
    assert {(m.action, m.reason) for m in report.moves} == {("deleted", "session")}
    assert live_contents(reader, ada.id) == []


def test_memory_retention_on_keeps_memories_across_sessions(
    reader: HybridDatabaseManager,
) -> None:
    ada = Personas(reader).create("Ada")
    Memories(reader).add(ada.id, "remember me")
    Conversations(reader).start(ada.id)
    Conversations(reader).start(ada.id)
    assert live_contents(reader, ada.id) == ["remember me"]


def test_the_privacy_rules_run_with_the_optimizer_and_move_nothing_else(
    reader: HybridDatabaseManager,
) -> None:
    """A persona that does not auto-optimize gets its privacy rules applied on commit,
    and only those: no memory changes tier."""
    ada = Personas(reader).create(
        "Ada",
        sets=[
            "privacy.memory_retention=false",
            "memory.auto_optimize=false",
            "memory.capacities.warm=1",
        ],
    )
    memories = Memories(reader)
    Conversations(reader).start(ada.id)
    for text in ("one", "two", "three"):
        memories.add(ada.id, text, importance=0.9)
    tiers = {m.content: m.tier for m in memories.list(MemoryFilter(persona_id=ada.id))}
    assert list(tiers.values()) == ["warm"] * 3  # over capacity, not optimized
    Conversations(reader).start(ada.id)
    assert live_contents(reader, ada.id) == []


def test_new_tags_keep_restricted_while_the_text_holds_restricted_data(
    reader: HybridDatabaseManager,
) -> None:
    ada = Personas(reader).create("Ada")
    memories = Memories(reader)
    secret = memories.add(ada.id, "write to ada@example.org").memory
    memories.update(secret.id, tags=["work"])
    assert sorted(memories.get(secret.id).tags) == ["restricted", "work"]
    memories.update(secret.id, content="write to her at the office", tags=["work"])
    assert memories.get(secret.id).tags == ["work"]


def test_an_update_that_makes_a_memory_restricted_applies_its_retention(
    reader: HybridDatabaseManager,
) -> None:
    ada = Personas(reader).create(
        "Ada", sets=["memory.restricted_retention_days=1", "memory.auto_optimize=false"]
    )
    memories = Memories(reader)
    added_days_ago(reader, ada.id, "old", "a plain note")
    assert live_contents(reader, ada.id) == ["a plain note"]
    memories.update("old", content="mail ada@example.org")
    assert live_contents(reader, ada.id) == []


def test_a_restore_that_a_privacy_rule_would_undo_is_refused_saying_why(
    reader: HybridDatabaseManager,
) -> None:
    ada = Personas(reader).create("Ada", sets=["privacy.memory_retention=false"])
    memories = Memories(reader)
    before = memories.add(ada.id, "before the session").memory
    Conversations(reader).start(ada.id)
    assert memories.get(before.id).deleted_at is not None
    with pytest.raises(PrivacyError, match=r"privacy.memory_retention is off.*undone at once"):
        memories.restore(before.id)
    Personas(reader).update(ada.id, sets=["privacy.memory_retention=true"])
    assert memories.restore(before.id).deleted_at is None

    Personas(reader).update(ada.id, sets=["memory.restricted_retention_days=1"])
    added_days_ago(reader, ada.id, "old", "mail ada@example.org", tags=["restricted"])
    assert memories.get("old").deleted_at is None  # nothing ran the rule yet
    memories.delete("old")
    with pytest.raises(PrivacyError, match=r"restricted_retention_days of Ada .* \(1\)"):
        memories.restore("old")
    assert memories.get("old").deleted_at is not None


def test_a_restore_that_retention_would_undo_is_refused_saying_why(
    reader: HybridDatabaseManager,
) -> None:
    ada = Personas(reader).create("Ada")
    for memory_id in ("a", "b"):
        added_days_ago(reader, ada.id, memory_id, f"note {memory_id}")
    memories = Memories(reader)
    memories.delete("a")
    memories.delete("b")
    Personas(reader).update(ada.id, sets=["memory.retention_days=5"])  # archives
    assert memories.restore("a").archived_at is not None  # restored, and archived
    Personas(reader).update(ada.id, sets=['memory.retention_action="delete"'])
    with pytest.raises(ConfigError, match="retention of 5 days, which deletes it: restoring"):
        memories.restore("b")


def test_any_update_of_a_persona_s_memories_applies_its_privacy_rules(
    reader: HybridDatabaseManager,
) -> None:
    # As every other change does: a rule due since the last one is applied, whichever
    # field the update changes.
    ada = Personas(reader).create(
        "Ada", sets=["memory.restricted_retention_days=1", "memory.auto_optimize=false"]
    )
    memories = Memories(reader)
    plain = memories.add(ada.id, "likes green tea").memory
    added_days_ago(reader, ada.id, "old", "mail ada@example.org", tags=["restricted"])
    assert live_contents(reader, ada.id) == ["likes green tea", "mail ada@example.org"]
    change = memories.update(plain.id, importance=0.9)
    assert [(m.memory_id, m.reason) for m in change.moves] == [("old", "restricted")]
    assert live_contents(reader, ada.id) == ["likes green tea"]
