"""Live queries about conversations: a persona's list, one conversation and its messages."""

from __future__ import annotations

from sqlalchemy import func, select

from pjai.hybrid import HybridDatabaseManager, spread
from pjai.schema.expressions import memory_id_of_message
from pjai.schema.tables import conversation_messages, conversations, memories
from pjai.store import LiveQuery, Row

__all__ = [
    "LIST_LIMIT",
    "MESSAGE_WINDOW",
    "conversation",
    "in_order",
    "listing",
    "memories_made",
    "messages",
]

LIST_LIMIT = 200
"""How many of a persona's conversations the list shows, the latest started first."""

MESSAGE_WINDOW = 300
"""How many of a conversation's messages are read at once: the latest ones."""

_c = conversations.c
_m = conversation_messages.c


def listing(
    manager: HybridDatabaseManager, persona_id: str, *, limit: int = LIST_LIMIT
) -> LiveQuery:
    """A persona's conversations, the latest started first, as
    :meth:`pjai.app.Conversations.list` orders them (up to ``limit``)."""
    query = (
        select(_c.id, _c.title, _c.message_count, _c.started_at, _c.updated_at)
        .where(_c.persona_id == persona_id)
        .order_by(_c.started_at.desc(), _c.id)
        .limit(limit)
    )
    return manager.live(query)


def conversation(manager: HybridDatabaseManager, conversation_id: str) -> LiveQuery:
    """One conversation's row (none while it does not exist)."""
    query = select(_c.id, _c.persona_id, _c.title, _c.message_count, _c.started_at).where(
        _c.id == conversation_id
    )
    return manager.live(spread(query))


def messages(
    manager: HybridDatabaseManager, conversation_id: str, *, last: int | None = None
) -> LiveQuery:
    """The latest ``last`` (default :data:`MESSAGE_WINDOW`) messages of a conversation,
    newest first (put them in the order they were sent with :func:`in_order`)."""
    last = MESSAGE_WINDOW if last is None else last
    query = select(_m.id, _m.role, _m.content, _m.sent_at).where(
        _m.conversation_id == conversation_id
    )
    return manager.live(spread(query, order_by=(_m.sent_at.desc(), _m.id.desc()), limit=last))


def in_order(rows: list[Row]) -> list[Row]:
    """The rows of :func:`messages` in the order they were sent."""
    return rows[::-1]


def memories_made(manager: HybridDatabaseManager, conversation_id: str) -> LiveQuery:
    """One row: how many messages the conversation has (``messages``) and how many of
    them were made into memories (``made``), deleted since or not, as an ingest counts
    them when it skips what it made before."""
    mem = memories.c
    query = (
        select(
            func.count(_m.id).label("messages"),
            func.count(mem.id).label("made"),
        )
        .select_from(
            conversation_messages.outerjoin(memories, mem.id == memory_id_of_message(_m.id))
        )
        .where(_m.conversation_id == conversation_id)
    )
    # A message and the memory made of it are the conversation's persona's: one shard.
    return manager.live(spread(query, counts_by=()))
