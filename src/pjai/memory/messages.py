"""A persona's conversations and their messages: finding them, and adding a message.

A new message's role is one of :data:`~pjai.schema.conversations.MESSAGE_ROLES`
(``user``, ``assistant``, ``system``, ``tool``); another is refused, naming them. Making
memories of them is :mod:`pjai.memory.conversations`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from pjai.errors import EventValidationError, NotFoundError
from pjai.memory.backend import Backend
from pjai.memory.lookup import require_persona
from pjai.schema import ConversationMessageAdded, new_id
from pjai.schema.conversations import MESSAGE_ROLES
from pjai.schema.fields import CONTENT_MAX_LENGTH
from pjai.schema.tables import conversation_messages, conversations, personas

__all__ = ["add_message", "conversation", "conversations_of", "messages"]


def add_message(
    backend: Backend,
    conversation_id: str,
    role: str,
    content: str,
    *,
    sent_at: datetime | None = None,
) -> ConversationMessageAdded:
    """Add a message to a conversation (``sent_at`` defaults to now); returns the event.

    ``role`` must be one of :data:`~pjai.schema.conversations.MESSAGE_ROLES`; a
    conversation of a deleted persona takes no message (:class:`~pjai.errors.NotFoundError`).
    """
    persona_id = conversation(backend, conversation_id).persona_id
    require_live_persona_of(backend, conversation_id, persona_id)
    if role not in MESSAGE_ROLES:
        raise EventValidationError(
            ConversationMessageAdded.NAME,
            f"must be one of {', '.join(MESSAGE_ROLES)}, got {role!r}",
            field="role",
        )
    said = message_memory_text(role, content)
    if len(said) > CONTENT_MAX_LENGTH:
        # Ingest makes the memory "role: text", which must fit a memory's content; a
        # longer message would keep its whole conversation from ever becoming memories.
        raise EventValidationError(
            ConversationMessageAdded.NAME,
            f"must be at most {CONTENT_MAX_LENGTH - len(said) + len(content):,} characters "
            f"for a {role} message (its memory is {role!r}, ': ' and the text, at most "
            f"{CONTENT_MAX_LENGTH:,}), got {len(content):,}",
            field="content",
        )
    event = ConversationMessageAdded(
        message_id=new_id(),
        conversation_id=conversation_id,
        persona_id=persona_id,
        role=role,
        content=content,
        sent_at=sent_at,
    )
    backend.commit(event)
    return event


def message_memory_text(role: str, content: str) -> str:
    """The content of a message's memory: its role, ``": "`` and its text."""
    return f"{role}: {content}"


def require_live_persona_of(
    backend: Backend,
    conversation_id: str,
    persona_id: str,
    *,
    refused: str = "nothing can be added to it",
) -> None:
    """Refuse (:class:`~pjai.errors.NotFoundError`, saying ``refused``) a conversation
    whose persona is deleted."""
    # The message event itself does not check its persona (older logs hold messages of
    # personas deleted since, and other instances send them): a deleted persona's talk
    # is closed until it is restored.
    deleted = backend.query(
        select(personas.c.name).where(
            personas.c.id == persona_id, personas.c.deleted_at.is_not(None)
        )
    )
    if deleted:
        raise NotFoundError(
            f"conversation {conversation_id!r} is of {deleted[0].name} ({persona_id}), which "
            f"is deleted: {refused}; `pjai persona restore {persona_id}` "
            "brings the persona back"
        )


def conversation(backend: Backend, conversation_id: str) -> Any:
    """A conversation's row, or :class:`~pjai.errors.NotFoundError`."""
    found = backend.query(select(conversations).where(conversations.c.id == conversation_id))
    if not found:
        raise NotFoundError(f"no conversation {conversation_id!r}")
    return found[0]


def conversations_of(backend: Backend, persona_id: str) -> list[Any]:
    """A live persona's conversations, the latest started first (rows)."""
    require_persona(backend, persona_id)
    c = conversations.c
    return backend.query(
        select(conversations).where(c.persona_id == persona_id).order_by(c.started_at.desc(), c.id)
    )


def messages(backend: Backend, conversation_id: str, *, limit: int | None = None) -> list[Any]:
    """A conversation's messages in the order they were sent (the first ``limit``)."""
    said = conversation_messages.c
    query = (
        select(conversation_messages)
        .where(said.conversation_id == conversation_id)
        .order_by(said.sent_at, said.id)
        .limit(limit)
    )
    return backend.query(query)
