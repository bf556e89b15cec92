"""Conversation events: a conversation started, a message was added to it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal, get_args

from msgspec import Meta

from pjai.schema.event import Context, Event
from pjai.schema.fields import Content, Id, UtcDatetime
from pjai.schema.limits import INT32_MAX
from pjai.schema.ops import Greatest, Increment, Insert, Missing, Op, Update
from pjai.schema.personas import require_live_persona

__all__ = ["MESSAGE_ROLES", "ConversationMessageAdded", "ConversationStarted", "MessageRole"]

MessageRole = Literal["user", "assistant", "system", "tool"]
"""Who says a new message: the user, the assistant (the persona), the system prompt, or a
tool's output."""

MESSAGE_ROLES: tuple[MessageRole, ...] = get_args(MessageRole)
"""The roles a new message may have. The commands that add messages check it; the event
keeps any sender name (1 to 32 characters), as older logs and imported chats hold them."""

Role = Annotated[str, Meta(min_length=1, max_length=32)]
"""Who spoke, as the event records it: one of :data:`MESSAGE_ROLES` for new messages, a
sender name in older logs and imports."""

Title = Annotated[str, Meta(max_length=500)]


class ConversationStarted(Event, frozen=True, kw_only=True):
    """A conversation with a persona began; ``started_at`` defaults to the commit time."""

    NAME = "v1.ConversationStarted"
    SENSITIVE = ("title",)
    CONFLICT = "precondition"
    conversation_id: Id
    persona_id: Id
    title: Title = ""
    started_at: UtcDatetime | None = None

    def materialize(self, ctx: Context) -> Sequence[Op]:
        values = {
            "id": self.conversation_id,
            "persona_id": self.persona_id,
            "title": self.title,
            "message_count": 0,
            "started_at": self.started_at or ctx.at,
            "created_at": ctx.at,
            "updated_at": ctx.at,
        }
        return [require_live_persona(self.persona_id), Insert("conversations", values)]


class ConversationMessageAdded(Event, frozen=True, kw_only=True):
    """A message was said in a conversation; ``sent_at`` defaults to the commit time."""

    NAME = "v1.ConversationMessageAdded"
    SENSITIVE = ("content",)
    CONFLICT = "commutative"
    message_id: Id
    conversation_id: Id
    persona_id: Id
    role: Role
    content: Content
    sent_at: UtcDatetime | None = None

    def materialize(self, ctx: Context) -> Sequence[Op]:
        missing = Missing(
            "conversation_id",
            "persona {0!r} has no conversation {1!r}",
            (self.persona_id, self.conversation_id),
        )
        # Counts add up and the latest time stays: messages commute (CONFLICT).
        counted = {"message_count": Increment(1, INT32_MAX), "updated_at": Greatest(ctx.at)}
        where = {"id": self.conversation_id, "persona_id": self.persona_id}
        message = {
            "id": self.message_id,
            "conversation_id": self.conversation_id,
            "persona_id": self.persona_id,
            "role": self.role,
            "content": self.content,
            "sent_at": self.sent_at or ctx.at,
            "created_at": ctx.at,
        }
        return [
            Update("conversations", where, counted, missing),
            Insert("conversation_messages", message),
        ]
