"""The conversations view under a simulated user: start, talk, ingest, follow commits
made elsewhere and the active persona."""

from __future__ import annotations

import pytest
from nicegui import ui
from nicegui.testing.user import User
from nicegui.testing.user_interaction import UserInteraction

from pjai.app.reads import conversations as reads
from pjai.memory import Ingested, RefusedMessage
from pjai.schema import ConversationMessageAdded, new_id
from pjai.sql.repositories import MemoryFilter
from pjai.web import WebApp
from pjai.web.views.conversation_chat import ConversationChat
from pjai.web.views.conversation_ingest import ingested_text, made_text
from tests.web.conftest import by_testid, simulated, until

pytestmark = pytest.mark.anyio


def _persona(web: WebApp, name: str) -> str:
    return web.services.personas.create(name, activate=True).id


def _texts(user: User) -> list[str]:
    """The messages the chat shows, top to bottom."""
    return ["\n".join(m._original_text) for m in _messages(user)]


def _messages(user: User) -> list[ui.chat_message]:
    found = user.find(marker="message").elements
    chats = [e for e in found if isinstance(e, ui.chat_message)]
    # In the order they sit in their column (a set does not keep it).
    return sorted(chats, key=lambda m: m.parent_slot.children.index(m) if m.parent_slot else 0)


def _row(user: User, conversation_id: str) -> UserInteraction[ui.element]:
    """The list's row of a conversation, to click."""
    rows = user.find(marker="conversation-row").elements
    found = {e for e in rows if e.props["data-conversation"] == conversation_id}
    return UserInteraction(user, found, None)


def _opened(user: User) -> str:
    """The id of the conversation the list marks as open (the one the chat shows)."""
    (row,) = [e for e in user.find(marker="conversation-row").elements if e.props.get("active")]
    (chat,) = [e for e in user.find(kind=ConversationChat).elements]
    assert chat.conversation_id == row.props["data-conversation"]
    return str(chat.conversation_id)


async def _say(user: User, text: str, *, role: str = "user") -> None:
    (toggle,) = user.find(marker="say-as").elements
    toggle.value = role
    user.find(marker="message-text").clear().type(text)
    user.find(marker="send").click()


def _quiet_talk(web: WebApp) -> tuple[str, str]:
    """Ada, active, and her conversation "Quiet" with no message yet: their ids."""
    ada = _persona(web, "Ada")
    return ada, web.services.conversations.start(ada, title="Quiet")


async def _open_empty(user: User) -> None:
    """Open the conversations view on a conversation with no message yet."""
    await user.open("/conversations")
    await user.should_see("No message yet: write the first one below.")


def _message_box(user: User) -> ui.textarea:
    """The box a message is written in."""
    (text,) = user.find(marker="message-text").elements
    assert isinstance(text, ui.textarea)
    return text


async def test_without_a_persona_the_view_says_what_to_do(web: WebApp) -> None:
    async with simulated(web) as user:
        await user.open("/conversations")
        await user.should_see("No persona yet: create one in")


async def test_a_conversation_started_in_the_view_opens_and_takes_messages(
    web: WebApp,
) -> None:
    ada = _persona(web, "Ada")
    async with simulated(web) as user:
        await user.open("/conversations")
        await user.should_see("No conversation yet: start one above.")
        user.find(marker="conversation-title-input").type("Planning the trip")
        user.find(marker="start-conversation").click()
        user.find(marker="start-conversation").click()  # a double click starts one
        user.find(marker="conversation-title-input").trigger("keydown.enter")  # and Enter
        await user.should_see(marker="conversation-row")
        await user.should_see("No message yet: write the first one below.")

        (started,) = web.services.conversations.list(ada)
        assert started.title == "Planning the trip"
        await _say(user, "Where shall we go?")
        await user.should_see("Where shall we go?")
        await _say(user, "To the sea.", role="assistant")
        await user.should_see("To the sea.")

        said = web.services.conversations.show(started.id).messages
        assert [(m.role, m.content) for m in said] == [
            ("user", "Where shall we go?"),
            ("assistant", "To the sea."),
        ]
        assert _texts(user) == ["Where shall we go?", "To the sea."]
        # The persona speaks under its own name, the user on the other side.
        first, second = _messages(user)
        assert (first.props["name"], first.props["sent"]) == ("User", True)
        assert (second.props["name"], second.props["sent"]) == ("Ada", False)
        await user.should_see("2 messages")


async def test_an_empty_message_is_refused_in_the_form_and_nothing_is_written(
    web: WebApp,
) -> None:
    _, talk = _quiet_talk(web)
    async with simulated(web) as user:
        await _open_empty(user)
        await _say(user, "   ")
        text = _message_box(user)
        assert text.error == "The message is empty: write something first."
        assert text.value == "   "
        assert web.services.conversations.show(talk).messages == []
        # A message that is fine clears the error.
        await _say(user, "Hello")
        await user.should_see("Hello")
        assert text.error is None


async def test_a_refused_title_or_message_is_said_on_its_field_without_a_field_name(
    web: WebApp,
) -> None:
    ada, talk = _quiet_talk(web)
    async with simulated(web) as user:
        await _open_empty(user)
        await _say(user, "tea\x00time")
        text = _message_box(user)
        # The box is the message's: no "content: " the page never shows.
        await until(lambda: text.error is not None)
        assert str(text.error).startswith("must not contain the NUL character")
        user.find(marker="conversation-title-input").type("T" * 501)
        user.find(marker="start-conversation").click()
        (title,) = user.find(marker="conversation-title-input").elements
        assert isinstance(title, ui.input)
        await until(lambda: title.error is not None)
        assert str(title.error).startswith("expected text of at most 500 characters")
    assert web.services.conversations.show(talk).messages == []
    assert len(web.services.conversations.list(ada)) == 1


async def test_a_message_added_from_python_appears_without_reload(web: WebApp) -> None:
    ada = _persona(web, "Ada")
    talk = web.services.conversations.start(ada, title="Live")
    web.services.conversations.say(talk, "user", "first")
    async with simulated(web) as user:
        await user.open("/conversations")
        await user.should_see("first")
        web.services.conversations.say(talk, "assistant", "second, from elsewhere")
        await user.should_see("second, from elsewhere")
        assert _texts(user) == ["first", "second, from elsewhere"]
        # The list's figures follow too.
        await user.should_see("2 messages")
        other = web.services.conversations.start(ada, title="Started elsewhere")
        await user.should_see("Started elsewhere")
        rows = user.find(marker="conversation-row").elements
        listed = sorted(rows, key=lambda e: e.parent_slot.children.index(e) if e.parent_slot else 0)
        assert [e.props["data-conversation"] for e in listed] == [other, talk]
        # The newest is listed first; the open one stays open until another is picked.
        assert _opened(user) == talk
        _row(user, other).click()
        await user.should_see("No message yet: write the first one below.")
        assert _opened(user) == other


async def test_ingesting_makes_memories_once_and_says_so(web: WebApp) -> None:
    ada = _persona(web, "Ada")
    talk = web.services.conversations.start(ada, title="Facts")
    web.services.conversations.say(talk, "user", "My cat is called Miso.")
    web.services.conversations.say(talk, "assistant", "Miso: noted.")
    async with simulated(web) as user:
        await user.open("/conversations")
        await user.should_see("Miso: noted.")
        await user.should_see("No message is a memory yet.")
        (importance,) = user.find(marker="importance").elements
        importance.value = 0.8
        user.find(marker="make-memories").click()
        await user.should_see("Made 2 memories from this conversation.")
        await user.should_see("See them in Memories")
        await user.should_see("Every message is a memory.")
        made = web.services.memories.list(MemoryFilter(persona_id=ada))
        assert sorted(m.content for m in made) == [
            "assistant: Miso: noted.",
            "user: My cat is called Miso.",
        ]
        assert {m.importance for m in made} == {0.8}

        web.services.conversations.say(talk, "user", "And the dog is Rex.")
        await user.should_see("And the dog is Rex.")
        await user.should_see("2 of 3 messages are memories.")
        user.find(marker="make-memories").click()
        await user.should_see("Made 1 memory from this conversation (2 messages already were).")
        assert len(web.services.memories.list(MemoryFilter(persona_id=ada))) == 3


async def test_an_importance_out_of_range_is_refused_in_the_form(web: WebApp) -> None:
    ada = _persona(web, "Ada")
    talk = web.services.conversations.start(ada, title="Facts")
    web.services.conversations.say(talk, "user", "Something to remember.")
    async with simulated(web) as user:
        await user.open("/conversations")
        await user.should_see("Something to remember.")
        (importance,) = user.find(marker="importance").elements
        importance.value = 3
        user.find(marker="make-memories").click()
        assert isinstance(importance, ui.number)
        await until(lambda: importance.error is not None, "the refusal by the field")
        assert importance.error == "expected a number <= 1.0, got 3.0"
        assert web.services.memories.list(MemoryFilter(persona_id=ada)) == []


async def test_switching_the_active_persona_shows_its_conversations(web: WebApp) -> None:
    ada = _persona(web, "Ada")
    grace = _persona(web, "Grace")
    web.services.personas.activate(ada)
    web.services.conversations.start(ada, title="Ada's talk")
    grace_talk = web.services.conversations.start(grace, title="Grace's talk")
    web.services.conversations.say(grace_talk, "assistant", "Hello from Grace")
    async with simulated(web) as user:
        await user.open("/conversations")
        await user.should_see("Ada's talk")
        await user.should_not_see("Grace's talk")
        web.services.personas.activate(grace)
        await user.should_see("Grace's talk")
        await user.should_see("Hello from Grace")
        await user.should_not_see("Ada's talk")
        assert _opened(user) == grace_talk


async def test_renaming_the_active_persona_shows_its_new_name(web: WebApp) -> None:
    ada = _persona(web, "Ada")
    async with simulated(web) as user:
        await user.open("/conversations")
        await user.should_see("New conversation with Ada")
        web.services.personas.update(ada, name="Ada Lovelace")
        await user.should_see("New conversation with Ada Lovelace")


def test_what_an_ingest_made_reads_as_a_sentence() -> None:
    assert ingested_text(Ingested("c", 0, 0)) == "No message to make memories of yet."
    assert ingested_text(Ingested("c", 0, 3)) == (
        "Nothing new: every message is a memory already (3 memories)."
    )
    assert ingested_text(Ingested("c", 1, 0)) == "Made 1 memory from this conversation."
    too_long = RefusedMessage("m2", "content: too long")
    assert ingested_text(Ingested("c", 0, 1, refused=(too_long,))) == (
        "Made 0 memories from this conversation (1 message already was). "
        "A message could not become a memory (m2: content: too long)."
    )
    assert ingested_text(Ingested("c", 2, 0, refused=(too_long, too_long))).endswith(
        " 2 messages could not become memories (the first, m2: content: too long)."
    )
    assert made_text(0, 0) == ""
    assert made_text(3, 0) == "No message is a memory yet."
    assert made_text(3, 3) == "Every message is a memory."


async def test_the_chat_shows_the_latest_messages_and_moves_on_as_more_come(
    web: WebApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reads, "MESSAGE_WINDOW", 3)
    ada = _persona(web, "Ada")
    talk = web.services.conversations.start(ada, title="Long")
    for n in range(5):
        web.services.conversations.say(talk, "user", f"message {n}")
    async with simulated(web) as user:
        await user.open("/conversations")
        await user.should_see("message 4")
        assert _texts(user) == ["message 2", "message 3", "message 4"]
        await user.should_see("5 messages · started")
        await user.should_see("the latest 3 shown")
        web.services.conversations.say(talk, "assistant", "message 5")
        await user.should_see("message 5")
        assert _texts(user) == ["message 3", "message 4", "message 5"]


async def test_the_view_works_with_the_store_switched_off(web: WebApp) -> None:
    ada = _persona(web, "Ada")
    web.manager.set_flag("use_livestore", False)
    assert web.manager.store is None
    async with simulated(web) as user:
        await user.open("/conversations")
        await user.should_see("No conversation yet: start one above.")
        user.find(marker="start-conversation").click()
        await user.should_see(marker="conversation-row")
        await _say(user, "Said while the store is off")
        await user.should_see("Said while the store is off")
        (talk,) = web.services.conversations.list(ada)
        assert [m.content for m in web.services.conversations.show(talk.id).messages] == [
            "Said while the store is off"
        ]


async def test_a_conversation_there_before_opens_with_the_store_switched_off(
    web: WebApp,
) -> None:
    # Off, the list's first result comes at once, while the view is still being built.
    ada = _persona(web, "Ada")
    talk = web.services.conversations.start(ada, title="Earlier")
    web.services.conversations.say(talk, "user", "Said before the view opened")
    web.manager.set_flag("use_livestore", False)
    async with simulated(web) as user:
        await user.open("/conversations")
        await user.should_see("Said before the view opened")
        await user.should_not_see("has no attribute")
        assert _opened(user) == talk


async def test_a_message_of_an_imported_chat_shows_its_sender(web: WebApp) -> None:
    ada = _persona(web, "Ada")
    talk = web.services.conversations.start(ada, title="Imported")
    # Older logs and imported chats name senders freely; only new messages are checked.
    web.manager.commit(
        ConversationMessageAdded(
            message_id=new_id(),
            conversation_id=talk,
            persona_id=ada,
            role='Bob "the builder"',
            content="Can we fix it?",
        )
    )
    async with simulated(web) as user:
        await user.open("/conversations")
        await user.should_see("Can we fix it?")
        (message,) = _messages(user)
        assert message.props["name"] == 'Bob "the builder"'
        assert message.props["data-role"] == 'Bob "the builder"'
        assert message.props["sent"] is False


async def test_titles_names_and_roles_show_direction_overrides_as_marks(web: WebApp) -> None:
    ada = _persona(web, "Ada \u202eevil")
    talk = web.services.conversations.start(ada, title="Trip \u202eevil")
    web.services.conversations.say(talk, "assistant", "Hello")
    async with simulated(web) as user:
        await user.open("/conversations")
        await user.should_see("Hello")
        title = by_testid(user, "conversation-title")
        assert isinstance(title, ui.label)
        assert title.text == "Trip ⟦RLO⟧evil"
        listed = [e for e in user.find("Trip ⟦RLO⟧evil").elements if e is not title]
        assert listed  # the list's row too
        (toggle,) = user.find(marker="say-as").elements
        assert isinstance(toggle, ui.toggle)
        assert toggle.options == {"user": "User", "assistant": "Ada ⟦RLO⟧evil"}
        (message,) = _messages(user)
        assert message.props["name"] == "Ada ⟦RLO⟧evil"
