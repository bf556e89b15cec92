"""Conversations as memories: each message becomes a memory of the conversation's persona.

A message's memory happened (``occurred_at``) when the message was sent; its summary is
the message it answers, so that a search for what was asked also finds the reply. Its id
is derived from the message id (a digest of it when it is too long to be extended), so
ingesting a conversation again adds only new messages.

The conversations and their messages themselves, and adding a message, are
:mod:`pjai.memory.messages`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
from sqlalchemy import and_, func, or_, select

from pjai.errors import EventValidationError, PrivacyError
from pjai.memory.backend import Backend
from pjai.memory.classify import restricted_tags
from pjai.memory.data_collection import check_collection_allowed
from pjai.memory.messages import (
    add_message,
    conversation,
    conversations_of,
    message_memory_text,
    messages,
    require_live_persona_of,
)
from pjai.memory.optimizer import MemoryMove, session_start
from pjai.schema import SCHEMA, MemoryAdded, MemoryLinked
from pjai.schema.event import Event
from pjai.schema.expressions import message_memory_id
from pjai.schema.fields import CONTENT_MAX_LENGTH, Tier
from pjai.schema.limits import MAX_ARGS_BYTES
from pjai.schema.tables import conversation_messages, memories, personas
from pjai.schema.types import as_datetime, utc_now

__all__ = [
    "INGEST_BATCH",
    "INGEST_BATCH_TEXT",
    "INGEST_PAGE_TEXT",
    "Ingested",
    "RefusedMessage",
    "add_message",
    "check_collection_allowed",
    "conversation",
    "conversations_of",
    "follows",
    "ingest_conversation",
    "memory_id_of",
    "messages",
]


INGEST_BATCH = 1_000
"""Messages :func:`ingest_conversation` reads and makes into memories per commit. A
commit holds the write lock of the store and the SQL primary while it runs: other
writers wait up to about 0.3 s for 1,000 messages on 2 cores, three to four times that
for 5,000, while batches of 250 to 5,000 ingest equally fast (``pjai bench ingest``,
docs/benchmarks.md)."""

INGEST_BATCH_TEXT = 8_000_000
"""The most characters of memory text (content and summary) one commit of
:func:`ingest_conversation` holds: a batch of long messages is committed in parts."""

INGEST_PAGE_TEXT = 8_000_000
"""Once the messages :func:`ingest_conversation` reads into one page hold this many
characters of text, it reads no more into it (a page holds at least one message):
:data:`INGEST_BATCH` messages of up to a million characters each would otherwise be a
gigabyte in memory at once."""


@dataclass(frozen=True, slots=True)
class RefusedMessage:
    """A message :func:`ingest_conversation` could make no memory of, and why."""

    message_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Ingested:
    """What :func:`ingest_conversation` did: memories ``added``, messages ``skipped``
    (made into memories before) and ``refused`` (no memory can be made of them; such
    messages come from other instances and imports, which the checks of
    :func:`add_message` do not see). ``moves``: what the optimizer runs it caused did to
    the persona's memories (filled in by the memory service)."""

    conversation_id: str
    added: int
    skipped: int
    moves: tuple[MemoryMove, ...] = ()
    refused: tuple[RefusedMessage, ...] = ()


def follows(persona_id: str, previous_id: str, memory_id: str) -> MemoryLinked:
    """The link from a conversation memory to the one after it (``temporal``): context
    expansion in search follows it, so that finding one turn finds its neighbour."""
    return MemoryLinked(
        persona_id=persona_id,
        source_id=previous_id,
        target_id=memory_id,
        kind="temporal",
        strength=1.0,
    )


def memory_id_of(message_id: str) -> str:
    """The memory id a message becomes (:func:`pjai.schema.expressions.message_memory_id`:
    ``"<message id>:memory"``, or a digest for a message id too long for that)."""
    return message_memory_id(message_id)


def ingest_conversation(
    backend: Backend,
    conversation_id: str,
    *,
    importance: float = 0.5,
    tier: Tier = "warm",
) -> Ingested:
    """Turn every message of a conversation into a memory (once), each new one linked
    (``temporal``) from the memory of the message before it.

    A message that cannot become a memory (too long with its role, say) is left out
    and named in :attr:`Ingested.refused`; the others are made. A reply's summary (the
    message before it) is shortened when the two would not fit in one event.

    The messages are read and made into memories :data:`INGEST_BATCH` at a time (fewer
    when their text reaches :data:`INGEST_PAGE_TEXT`), one commit each (fewer when
    their memories' text passes :data:`INGEST_BATCH_TEXT`): each batch is
    all or nothing, and an ingest that fails part way keeps the batches before; running
    it again makes the rest, linked from the memories made before. Given a
    :class:`~pjai.memory.MemorySystem`, its optimizer looks after each batch;
    :meth:`~pjai.memory.MemorySystem.ingest` runs it once, at the end.

    :class:`~pjai.errors.NotFoundError` if the persona is deleted;
    :class:`~pjai.errors.PrivacyError` if its ``privacy.data_collection`` is
    off, or if its ``privacy.memory_retention`` is off and a later conversation has
    started (this one's session is over) or this one starts after now (its session has
    not begun): the conversation stays, no memory is made of it. These are checked
    again before each batch: a batch made after the persona changed is not committed.
    """
    found = conversation(backend, conversation_id)
    _check_may_ingest(backend, found)
    # The caller's choices hold for every memory: an error in them is the caller's,
    # refused as such, not a message's.
    SCHEMA.encode(
        MemoryAdded(
            memory_id=conversation_id,
            persona_id=found.persona_id,
            content="-",
            importance=importance,
            tier=tier,
        )
    )
    making = _Making(found.persona_id, found.title or "", importance, tier)
    for page in _pages(backend, conversation_id):
        making.read(backend, page)
        for batch in making.batches(page):
            _check_may_ingest(backend, found)
            backend.commit(*batch)
    skipped = making.seen - making.added - len(making.refused)
    return Ingested(conversation_id, making.added, skipped, refused=tuple(making.refused))


def _pages(backend: Backend, conversation_id: str) -> Iterator[list[Any]]:
    """A conversation's messages in the order they were sent, :data:`INGEST_BATCH` at
    a time, or as many as reach :data:`INGEST_PAGE_TEXT` characters (at least one);
    each page is read after the one before has been made into memories.

    The lengths of the next :data:`INGEST_BATCH` messages are read first, then the
    messages that fit: long messages are never all read at once."""
    said = conversation_messages.c
    mine = said.conversation_id == conversation_id
    order = (said.sent_at, said.id)
    lengths = select(said.id, func.length(said.content).label("chars")).order_by(*order)
    whole = select(said.id, said.role, said.content, said.sent_at).order_by(*order)
    size, most = INGEST_BATCH, INGEST_PAGE_TEXT
    where = mine
    while True:
        listed = backend.query(lengths.where(where).limit(size))
        taken = chars = 0
        for message in listed:
            taken += 1
            chars += int(message.chars or 0)
            if chars >= most:
                break
        # Read up to as many as fit: a message sent meanwhile, before the last of
        # them, takes a place in this page and leaves the last for the next.
        page = backend.query(whole.where(where).limit(taken)) if taken else []
        if not page:
            return
        yield page
        last = page[-1]
        # The last of the conversation was listed, and read: a message sent meanwhile
        # before it would have left it for another page.
        if taken == len(listed) < size and last.id == listed[-1].id:
            return
        where = and_(
            mine,
            or_(said.sent_at > last.sent_at, and_(said.sent_at == last.sent_at, said.id > last.id)),
        )


@dataclass(slots=True)
class _Making:
    """One ingest's memories, a page of messages at a time: what it made and refused so
    far, and the message before the next page's first (its text is that one's summary,
    and its memory, when live, is linked to it)."""

    persona_id: str
    title: str
    importance: float
    tier: Tier
    seen: int = 0
    added: int = 0
    refused: list[RefusedMessage] = field(default_factory=list)
    previous: str = ""
    previous_id: str = ""
    previous_live: bool = False
    existing: set[str] = field(default_factory=set)
    live: set[str] = field(default_factory=set)

    def read(self, backend: Backend, page: list[Any]) -> None:
        """Find the memories made before of ``page``'s messages, whatever their type is
        now (a memory's type can be changed after ingest)."""
        made = memories.c
        ids = [memory_id_of(message.id) for message in page]
        rows = backend.query(
            select(made.id, made.persona_id, made.deleted_at).where(made.id.in_(ids))
        )
        self.existing = {r.id for r in rows}
        self.live = {r.id for r in rows if r.deleted_at is None and r.persona_id == self.persona_id}

    def batches(self, page: list[Any]) -> Iterator[list[Event]]:
        """The events making ``page``'s new memories and links, a commit's worth at a
        time (a link goes with the memory it leads to)."""
        batch: list[Event] = []
        text = 0
        for message in page:
            made = self._memory_of(message)
            if made is None:
                continue
            memory, link = made
            batch.extend((memory,) if link is None else (memory, link))
            text += len(memory.content) + len(memory.summary)
            if text >= INGEST_BATCH_TEXT:
                yield batch
                batch, text = [], 0
        if batch:
            yield batch

    def _memory_of(self, message: Any) -> tuple[MemoryAdded, MemoryLinked | None] | None:
        """The memory of ``message`` and the link to it (None when the message before has
        no live memory), or None when it was made before or cannot be made (then named
        in :attr:`refused`)."""
        self.seen += 1
        text = message_memory_text(str(message.role), str(message.content))
        memory_id = memory_id_of(message.id)
        previous, previous_id, linked = self.previous, self.previous_id, self.previous_live
        self.previous, self.previous_id = text, memory_id
        self.previous_live = memory_id in self.live
        if memory_id in self.existing:
            return None
        memory = MemoryAdded(
            memory_id=memory_id,
            persona_id=self.persona_id,
            name=self.title or str(message.role),
            content=text,
            summary=previous,
            type="conversation",
            # The name and summary are part of the memory as much as its content:
            # restricted data in any of them makes it restricted.
            tags=restricted_tags(
                ["conversation", *_role_tag(str(message.role))], text, previous, self.title
            ),
            importance=self.importance,
            tier=self.tier,
            occurred_at=message.sent_at,
        )
        try:
            fitting = _fitting(memory)
        except EventValidationError as exc:
            self.refused.append(RefusedMessage(message.id, _refusal(exc)))
            return None
        self.added += 1
        self.previous_live = True
        return fitting, follows(self.persona_id, previous_id, memory_id) if linked else None


_MOST_JSON_BYTES_PER_CHAR = 6
"""The most bytes of JSON one character can take (a control character as ``\\u001f``)."""


def _fitting(event: MemoryAdded) -> MemoryAdded:
    """``event`` as it can be committed, its summary shortened if need be, or the
    :class:`~pjai.errors.EventValidationError` saying why it cannot be."""
    if len(event.content) > CONTENT_MAX_LENGTH:
        raise EventValidationError(
            MemoryAdded.NAME,
            f"its memory would be {len(event.content):,} characters (the role, ': ' and "
            f"the text), over the {CONTENT_MAX_LENGTH:,} a memory may hold",
            field="content",
        )
    try:
        SCHEMA.encode(event)
        return event
    except EventValidationError:
        if not event.summary:
            raise
    # The summary is the message before, which may be as long as this one: two long
    # messages in a row fit no event (nor a summary that was itself a message too
    # long to keep). This one's memory keeps as much of it as fits.
    bare = msgspec.structs.replace(event, summary="")
    _, _, args = SCHEMA.encode(bare)
    room = min(CONTENT_MAX_LENGTH, (MAX_ARGS_BYTES - len(args)) // _MOST_JSON_BYTES_PER_CHAR)
    shortened = msgspec.structs.replace(event, summary=event.summary[: max(0, room)])
    try:
        SCHEMA.encode(shortened)
    except EventValidationError:
        return bare
    return shortened


def _refusal(exc: EventValidationError) -> str:
    return exc.reason if exc.field is None else f"{exc.field}: {exc.reason}"


def _check_may_ingest(backend: Backend, found: Any) -> None:
    """Refuse to make memories of conversation ``found`` (its row) for its persona as it
    is now: deleted, collecting no data, or its session over or not begun."""
    require_live_persona_of(
        backend, found.id, found.persona_id, refused="no memory can be made of it"
    )
    check_collection_allowed(backend, found.persona_id)
    _check_session_open(backend, found)


def _check_session_open(backend: Backend, found: Any) -> None:
    # Memories made now of an ended session's talk would outlive that session: the
    # session rule deletes only what was recorded before the latest conversation began.
    # A conversation dated ahead neither ends this one's session before its time (as the
    # optimizer holds) nor can become memories before its own begins: the session rule
    # would delete them, made before it, when it does.
    p = personas.c
    rows = backend.query(select(p.name, p.privacy_memory_retention).where(p.id == found.persona_id))
    if not rows or rows[0].privacy_memory_retention:
        return
    whose, now = f"{rows[0].name} ({found.persona_id})", utc_now()
    began = as_datetime(found.started_at)
    if began > now:
        raise PrivacyError(
            f"{whose} keeps no memory past its session (privacy.memory_retention off) and "
            f"conversation {found.id!r} begins at {began:%Y-%m-%d %H:%M:%S} UTC, after now: "
            "memories made of it now would be deleted when its session begins; ingest it "
            "once it has begun"
        )
    current = session_start(backend, found.persona_id, now)
    if current is not None and current > began:
        raise PrivacyError(
            f"{whose} keeps no memory past its session (privacy.memory_retention off) and "
            f"conversation {found.id!r} is of an ended session (a later conversation has "
            "started): no memory is made of it; only the latest conversation can become "
            "memories"
        )


def _role_tag(role: str) -> list[str]:
    # Older logs, imports and other devices may name a sender with spaces at its ends,
    # which no tag may have: one such message would keep the whole talk from ingest.
    tag = " ".join(role.split())
    return [tag] if tag else []
