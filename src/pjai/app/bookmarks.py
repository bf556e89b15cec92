"""Bookmarks and conversations: named views of a persona's timeline, and its talks.

A persona, bookmark or conversation that does not exist is a
:class:`~pjai.errors.NotFoundError`; a message's role must be one of
:data:`~pjai.schema.conversations.MESSAGE_ROLES`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from pjai.errors import EventValidationError
from pjai.hybrid import HybridDatabaseManager
from pjai.memory import MemorySystem, bookmark_memories, preset
from pjai.memory.lookup import require_persona
from pjai.memory.messages import add_message, conversation, conversations_of, messages
from pjai.memory.timeline import bookmarks, get_bookmark
from pjai.schema import (
    BookmarkCreated,
    BookmarkDeleted,
    BookmarkFilters,
    BookmarkUpdated,
    ConversationStarted,
    new_id,
)
from pjai.schema.bookmarks import check_time_range
from pjai.schema.models import Memory, memory_from_row
from pjai.schema.validation import validation_error

__all__ = ["BookmarkView", "Bookmarks", "ConversationView", "Conversations"]


@dataclass(frozen=True, slots=True)
class BookmarkView:
    """A bookmark's row and the memories it shows, most recent first."""

    bookmark: Any
    memories: list[Memory]


@dataclass(frozen=True, slots=True)
class ConversationView:
    """A conversation's row and its messages (rows) in the order they were sent."""

    conversation: Any
    messages: list[Any]


def _filters(**given: Any) -> BookmarkFilters:
    values = {k: v for k, v in given.items() if v is not None}
    try:
        return msgspec.convert(values, BookmarkFilters)
    except msgspec.ValidationError as exc:
        error = validation_error(BookmarkCreated.NAME, exc, BookmarkFilters, values)
        field = "filters" if error.field is None else f"filters.{error.field}"
        raise EventValidationError(error.event, error.reason, field=field) from exc


class Bookmarks:
    """Bookmark commands on a data directory's manager; bookmarks come back as rows."""

    def __init__(self, manager: HybridDatabaseManager) -> None:
        self.manager = manager

    def create(
        self,
        persona_id: str,
        name: str,
        *,
        description: str = "",
        time_from: datetime | None = None,
        time_to: datetime | None = None,
        tiers: Sequence[str] | None = None,
        types: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        importance_min: float | None = None,
        importance_max: float | None = None,
        hours: Sequence[int] | None = None,
        colour: str | None = None,
        labels: Sequence[str] = (),
    ) -> Any:
        """Bookmark a time range and filters of a persona's timeline; returns its row."""
        filters = _filters(
            tiers=None if tiers is None else list(tiers),
            types=None if types is None else list(types),
            tags=None if tags is None else list(tags),
            importance_min=importance_min,
            importance_max=importance_max,
            hours=None if hours is None else list(hours),
        )
        args: dict[str, Any] = {
            "bookmark_id": new_id(),
            "persona_id": persona_id,
            "name": name,
            "description": description,
            "time_from": time_from,
            "time_to": time_to,
            "filters": filters,
            "tags": list(labels),
        }
        if colour is not None:
            args["colour"] = colour
        event = BookmarkCreated(**args)
        try:
            self.manager.commit(event)
        except EventValidationError as exc:
            field = exc.field or ""
            if not field.startswith("tags"):
                raise
            labels = "labels" + field.removeprefix("tags")  # the bookmark's own tags, as given
            raise EventValidationError(exc.event, exc.reason, field=labels) from exc
        return get_bookmark(self.manager, event.bookmark_id)

    def preset(self, persona_id: str, name: str) -> Any:
        """Bookmark a preset (today, this_week, working_hours, hot_memories); its row."""
        event = preset(name, persona_id)
        self.manager.commit(event)
        return get_bookmark(self.manager, event.bookmark_id)

    def list(self, persona_id: str) -> list[Any]:
        """A persona's bookmarks by name (:class:`~pjai.errors.NotFoundError` for a
        persona that does not exist)."""
        require_persona(self.manager, persona_id)
        return bookmarks(self.manager, persona_id)

    def get(self, bookmark_id: str) -> Any:
        """A live bookmark's row, or :class:`~pjai.errors.QueryError`."""
        return get_bookmark(self.manager, bookmark_id)

    def show(self, bookmark_id: str, *, limit: int = 200) -> BookmarkView:
        """The bookmark and up to ``limit`` memories it shows."""
        mark = get_bookmark(self.manager, bookmark_id)
        rows = bookmark_memories(self.manager, bookmark_id, limit=limit)
        return BookmarkView(mark, [memory_from_row(r) for r in rows])

    def update(self, bookmark_id: str, **changes: Any) -> Any:
        """Change a bookmark's fields (as in ``v1.BookmarkUpdated``); returns its row."""
        mark = get_bookmark(self.manager, bookmark_id)
        # The range the bookmark is left with, refused as a new one's would be (the
        # event knows only the ends it changes; the table's check names no option).
        # A time that is no aware datetime cannot be compared: the event's own validation
        # refuses it below, naming its field.
        start, end = changes.get("time_from", mark.time_from), changes.get("time_to", mark.time_to)
        if _aware(start) and _aware(end):
            check_time_range(BookmarkUpdated.NAME, start, end)
        self.manager.commit(
            BookmarkUpdated(bookmark_id=bookmark_id, persona_id=mark.persona_id, **changes)
        )
        return get_bookmark(self.manager, bookmark_id)

    def delete(self, bookmark_id: str) -> None:
        """Delete a bookmark."""
        mark = get_bookmark(self.manager, bookmark_id)
        self.manager.commit(BookmarkDeleted(bookmark_id=bookmark_id, persona_id=mark.persona_id))


def _aware(value: Any) -> bool:
    return isinstance(value, datetime) and value.utcoffset() is not None


class Conversations:
    """Conversation commands on a data directory's manager."""

    def __init__(self, manager: HybridDatabaseManager) -> None:
        self.manager = manager

    def start(self, persona_id: str, *, title: str = "") -> str:
        """Start a conversation with a persona; returns its id. A new conversation is a
        new session: with the persona's ``privacy.memory_retention`` off, the memories
        of earlier sessions are deleted."""
        event = ConversationStarted(conversation_id=new_id(), persona_id=persona_id, title=title)
        MemorySystem(self.manager).commit(event)
        return event.conversation_id

    def say(
        self, conversation_id: str, role: str, text: str, *, sent_at: datetime | None = None
    ) -> str:
        """Add a message to a conversation; returns the message's id. ``role`` is one of
        ``user``, ``assistant``, ``system``, ``tool``."""
        return add_message(self.manager, conversation_id, role, text, sent_at=sent_at).message_id

    def list(self, persona_id: str) -> list[Any]:
        """A persona's conversations (rows), the latest started first."""
        return conversations_of(self.manager, persona_id)

    def show(self, conversation_id: str, *, limit: int | None = None) -> ConversationView:
        """A conversation and its messages in the order they were sent (the first
        ``limit``)."""
        row = conversation(self.manager, conversation_id)
        return ConversationView(row, messages(self.manager, conversation_id, limit=limit))
