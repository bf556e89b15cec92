"""Conversations as memories: each message becomes a memory of the conversation's persona.

A message's memory happened (``occurred_at``) when the message was sent; its summary is
the message it answers, so that a search for what was asked also finds the reply. Its id
is derived from the message id, so ingesting a conversation again adds only new
messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from pjai.errors import QueryError
from pjai.memory.backend import Backend
from pjai.schema import ConversationMessageAdded, MemoryAdded, new_id
from pjai.schema.fields import Tier
from pjai.schema.tables import conversation_messages, conversations, memories

__all__ = ["Ingested", "add_message", "ingest_conversation", "memory_id_of"]


@dataclass(frozen=True, slots=True)
class Ingested:
    """What :func:`ingest_conversation` did."""

    conversation_id: str
    added: int
    skipped: int


def memory_id_of(message_id: str) -> str:
    """The memory id a message becomes."""
    return f"{message_id}:memory"


def add_message(
    backend: Backend,
    conversation_id: str,
    role: str,
    content: str,
    *,
    sent_at: datetime | None = None,
) -> ConversationMessageAdded:
    """Add a message to a conversation (``sent_at`` defaults to now); returns the event."""
    found = backend.query(
        select(conversations.c.persona_id).where(conversations.c.id == conversation_id)
    )
    if not found:
        raise QueryError(f"no conversation {conversation_id!r}")
    event = ConversationMessageAdded(
        message_id=new_id(),
        conversation_id=conversation_id,
        persona_id=found[0].persona_id,
        role=role,
        content=content,
        sent_at=sent_at,
    )
    backend.commit(event)
    return event


def ingest_conversation(
    backend: Backend,
    conversation_id: str,
    *,
    importance: float = 0.5,
    tier: Tier = "warm",
) -> Ingested:
    """Turn every message of a conversation into a memory (once)."""
    c = conversations.c
    found = backend.query(select(c.persona_id, c.title).where(c.id == conversation_id))
    if not found:
        raise QueryError(f"no conversation {conversation_id!r}")
    persona_id, title = found[0].persona_id, found[0].title
    said = conversation_messages.c
    messages = backend.query(
        select(said.id, said.role, said.content, said.sent_at)
        .where(said.conversation_id == conversation_id)
        .order_by(said.sent_at, said.id)
    )
    existing = {
        r.id
        for r in backend.query(
            select(memories.c.id).where(
                memories.c.persona_id == persona_id, memories.c.type == "conversation"
            )
        )
    }
    events = []
    previous = ""
    for message in messages:
        text = f"{message.role}: {message.content}"
        if memory_id_of(message.id) not in existing:
            events.append(
                MemoryAdded(
                    memory_id=memory_id_of(message.id),
                    persona_id=persona_id,
                    name=title or str(message.role),
                    content=text,
                    summary=previous,
                    type="conversation",
                    tags=["conversation", str(message.role)],
                    importance=importance,
                    tier=tier,
                    occurred_at=message.sent_at,
                )
            )
        previous = text
    if events:
        backend.commit(*events)
    return Ingested(conversation_id, len(events), len(messages) - len(events))
