"""Bookmarks and conversations through the application layer."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pjai.app import Bookmarks, Conversations, Memories, Personas
from pjai.errors import EventValidationError, NotFoundError, QueryError
from pjai.hybrid import HybridDatabaseManager

MAY = datetime(2026, 5, 1, tzinfo=UTC)
JUNE = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture
def ada(manager: HybridDatabaseManager) -> str:
    Personas(manager).create("Ada", persona_id="ada", sets=["memory.auto_optimize=false"])
    memories = Memories(manager)
    memories.add("ada", "Standup", memory_id="standup", tags=["work"],
                 occurred_at=datetime(2026, 5, 4, 9, 30, tzinfo=UTC))  # fmt: skip
    memories.add("ada", "Dinner", memory_id="dinner", tier="hot",
                 occurred_at=datetime(2026, 5, 4, 20, tzinfo=UTC))  # fmt: skip
    return "ada"


def test_bookmarks(manager: HybridDatabaseManager, ada: str) -> None:
    marks = Bookmarks(manager)
    work = marks.create(ada, "Work", time_from=MAY, time_to=JUNE, hours=[9, 17], labels=["mine"])
    assert (work.name, work.filters["hours"], work.tags) == ("Work", [9, 17], ["mine"])
    view = marks.show(work.id)
    assert (view.bookmark.id, [m.id for m in view.memories]) == (work.id, ["standup"])
    hot = marks.preset(ada, "hot_memories")
    assert [m.id for m in marks.show(hot.id).memories] == ["dinner"]
    assert [m.name for m in marks.list(ada)] == ["Hot memories", "Work"]
    changed = marks.update(work.id, name="Office", colour="#112233")
    assert (changed.name, changed.colour) == ("Office", "#112233")
    # A start after the end it keeps is refused as for a new bookmark, naming the field.
    with pytest.raises(EventValidationError, match="'time_from': must not be after the end"):
        marks.update(work.id, time_from=datetime(2030, 1, 1, tzinfo=UTC))
    marks.delete(work.id)
    assert [m.name for m in marks.list(ada)] == ["Hot memories"]
    with pytest.raises(QueryError, match="no bookmark"):
        marks.get(work.id)
    with pytest.raises(QueryError, match="no bookmark preset 'lunch'"):
        marks.preset(ada, "lunch")
    with pytest.raises(EventValidationError, match=r"filters\.hours"):
        marks.create(ada, "X", hours=[9])
    with pytest.raises(EventValidationError, match="importance_min"):
        marks.create(ada, "X", importance_min=0.9, importance_max=0.1)
    with pytest.raises(EventValidationError, match=r"filters\.importance_max': .*, got 7$"):
        marks.create(ada, "X", importance_max=7)


def test_conversations(manager: HybridDatabaseManager, ada: str) -> None:
    talks = Conversations(manager)
    chat = talks.start(ada, title="Dinner plans")
    first = talks.say(chat, "user", "Where shall we eat?")
    second = talks.say(chat, "assistant", "Ramen.")
    assert first != second
    done = Memories(manager).ingest(chat)
    assert (done.added, done.skipped) == (2, 0)
    with pytest.raises(QueryError, match="no conversation 'nope'"):
        talks.say("nope", "user", "hi")


def test_conversations_are_listed_and_shown(manager: HybridDatabaseManager, ada: str) -> None:
    talks = Conversations(manager)
    first = talks.start(ada, title="Dinner plans")
    second = talks.start(ada, title="Holidays")
    talks.say(first, "user", "Where shall we eat?", sent_at=MAY)
    talks.say(first, "assistant", "Ramen.", sent_at=JUNE)
    talks.say(first, "system", "Be brief.", sent_at=datetime(2026, 4, 1, tzinfo=UTC))
    listed = talks.list(ada)
    assert {c.id for c in listed} == {first, second}
    assert {c.title: c.message_count for c in listed} == {"Dinner plans": 3, "Holidays": 0}
    view = talks.show(first)
    assert (view.conversation.id, view.conversation.title) == (first, "Dinner plans")
    assert [(m.role, m.content) for m in view.messages] == [
        ("system", "Be brief."),
        ("user", "Where shall we eat?"),
        ("assistant", "Ramen."),
    ]
    assert [m.role for m in talks.show(first, limit=1).messages] == ["system"]
    with pytest.raises(NotFoundError, match="no conversation 'nope'"):
        talks.show("nope")
    with pytest.raises(NotFoundError, match="no persona 'nobody'"):
        talks.list("nobody")


def test_a_role_must_be_one_of_the_roles(manager: HybridDatabaseManager, ada: str) -> None:
    talks = Conversations(manager)
    chat = talks.start(ada)
    assert talks.say(chat, "tool", "42 results")
    allowed = "'role': must be one of user, assistant, system, tool, got 'bob'"
    with pytest.raises(EventValidationError, match=allowed):
        talks.say(chat, "bob", "hi")
    assert talks.show(chat).conversation.message_count == 1


def test_bookmarks_of_a_persona_that_does_not_exist(manager: HybridDatabaseManager) -> None:
    with pytest.raises(NotFoundError, match="no persona 'nobody'"):
        Bookmarks(manager).list("nobody")


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        (datetime(2026, 5, 2), "with a timezone component"),  # no time zone
        ("2026-05-02", "invalid RFC3339 encoded datetime"),
    ],
)
def test_an_update_to_a_time_that_is_not_aware_names_its_field(
    manager: HybridDatabaseManager, ada: str, given: object, reason: str
) -> None:
    marks = Bookmarks(manager)
    mark = marks.create(ada, "May", time_from=MAY, time_to=JUNE)
    with pytest.raises(EventValidationError, match=f"'time_from': .*{reason}"):
        marks.update(mark.id, time_from=given)
    assert marks.get(mark.id).time_from == MAY
