"""Legacy rows as drafted PJai events: the column mapping, one row at a time.

Pure functions of a row's values and the database's :class:`Mapping`, each reading its
row through a :class:`~pjai.hybrid.legacy.reading.Reading`;
:mod:`pjai.hybrid.legacy.run` reads the file, settles the drafts and commits them.
A value that cannot be read is reported and replaced (by PJai's default, or by the
stand-in named in the report); only a row with nothing meaningful to import raises
:class:`~pjai.hybrid.legacy.values.RowError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from pjai.hybrid.legacy.drafts import REJECT, Built, Draft, Source
from pjai.hybrid.legacy.reading import DEFAULT as DEFAULT
from pjai.hybrid.legacy.reading import Reading, Row
from pjai.hybrid.legacy.traits import traits
from pjai.hybrid.legacy.values import (
    Problem,
    RowError,
    Scale,
    Unreadable,
    first,
    flag,
    json_value,
    number,
    required_text,
    tags,
    text,
    time_value,
)
from pjai.schema import (
    ConversationMessageAdded,
    ConversationStarted,
    MemoryConfig,
    MemoryImported,
    PersonaImported,
    PrivacySettings,
)
from pjai.schema.fields import Tier
from pjai.schema.limits import time_problem

__all__ = [
    "COLUMNS",
    "NOT_IMPORTED",
    "REQUIRED",
    "SOURCE",
    "TARGETS",
    "Mapping",
    "Row",
    "active_since",
    "conversation_drafts",
    "created_at",
    "memory_drafts",
    "persona_drafts",
]

SOURCE = "pjai-desktop"
"""The ``source`` recorded on every imported persona and memory."""

NOT_IMPORTED = {
    "personas.memory_categories": "PJai memories have no categories (types and tags remain)",
    "personas.memory_compression_enabled": "PJai does not compress memories",
    "memory_entities.embedding": "PJai's schema stores no embeddings",
    "memory_entities.embedding_model": "PJai's schema stores no embeddings",
    "conversations.updated_at": "PJai sets it to the time the messages are imported",
}
"""Legacy columns the import leaves behind, and why."""

PRIVACY = {
    "data_collection": "privacy_data_collection",
    "analytics": "privacy_analytics_enabled",
    "share_with_researchers": "privacy_share_with_researchers",
    "personality_analysis": "privacy_allow_personality_analysis",
    "memory_retention": "privacy_memory_retention",
    "export_allowed": "privacy_export_data_allowed",
}
READ = {
    "personas": "id name description personality_traits personality_temperament "
    "personality_communication_style memory_max_memories memory_importance_threshold "
    "memory_auto_optimize memory_retention_period is_active created_at updated_at "
    + " ".join(PRIVACY.values()),
    "memory_entities": "id persona_id type name content summary tags importance memory_tier "
    "access_count last_accessed created_at updated_at deleted_at",
    "conversations": "id persona_id title messages created_at updated_at",
}
COLUMNS = {table: columns.split() for table, columns in READ.items()}
REQUIRED = {
    "personas": {"id", "name"},
    "memory_entities": {"id", "persona_id", "content"},
    "conversations": {"id", "persona_id", "messages"},
}
TARGETS = {"personas": "personas", "memory_entities": "memories", "conversations": "conversations"}
TIERS: dict[str, Tier] = {"active": "hot", "hot": "hot", "warm": "warm", "cold": "cold"}
ROLE_KEYS = ("role", "sender", "author")
CONTENT_KEYS = ("content", "text", "message")
TIME_KEYS = ("timestamp", "created_at", "time", "date")

DEFAULT_IMPORTANCE = next(
    f.default for f in msgspec.structs.fields(MemoryImported) if f.name == "importance"
)


@dataclass(frozen=True, slots=True)
class Mapping:
    """What holds for every row of one legacy database: its scales, the import time."""

    importance: Scale
    """The scale of ``memory_entities.importance``."""
    threshold: Scale
    """The scale of ``personas.memory_importance_threshold``."""
    now: datetime
    """The import time: it stands in for a row's times when none can be read."""
    tag: Callable[..., list[str]] = lambda tags, *_texts: tags
    """``tag(tags, *texts)``: a memory's tags given its text (the memory layer's
    classifier adds ``restricted``); by default the tags as read."""


def persona_drafts(row: Row, persona_id: str, mapping: Mapping) -> Built:
    """The PersonaImported draft of a ``personas`` row."""
    reading = Reading(row)
    if row["name"] is None:
        raise RowError("name is missing")
    created_at, updated_at = reading.times(mapping.now)
    reading.value("is_active", flag, False, "the persona is not activated")
    personality = traits(row["personality_traits"])
    reading.problems += personality.problems
    memory = {
        "auto_optimize": reading.value("memory_auto_optimize", flag, None),
        # 0 means unset for these two
        "max_memories": reading.value("memory_max_memories", number, None) or None,
        "retention_days": reading.value("memory_retention_period", number, None) or None,
        "importance_threshold": reading.fraction(
            "memory_importance_threshold", mapping.threshold, MemoryConfig().importance_threshold
        ),
    }
    defaults = PrivacySettings()
    privacy = {
        name: reading.value(column, flag, getattr(defaults, name))
        for name, column in PRIVACY.items()
    }
    fields = {
        "persona_id": persona_id,
        "name": required_text(row["name"], "name"),
        "description": reading.text("description"),
        "personality": {
            "big_five": personality.big_five,
            "custom_traits": personality.custom,
            "dominant_traits": personality.dominant,
            "type": reading.text("personality_temperament"),
        },
        "communication_style": reading.text("personality_communication_style"),
        "memory": {name: value for name, value in memory.items() if value is not None},
        "privacy": privacy,
        "source": SOURCE,
        "created_at": created_at,
        "updated_at": updated_at,
    }
    sources = _sources(
        row,
        description="description",
        personality="personality_traits",
        communication_style="personality_communication_style",
        **{
            "personality.type": "personality_temperament",
            "memory.max_memories": "memory_max_memories",
            "memory.retention_days": "memory_retention_period",
            "memory.importance_threshold": "memory_importance_threshold",
            "memory.auto_optimize": "memory_auto_optimize",
        },
        **{f"privacy.{name}": column for name, column in PRIVACY.items()},
    )
    sources |= _times(row, mapping.now)
    sources["name"] = Source("name", row["name"], REJECT)
    return Built([Draft(PersonaImported, fields, sources)], reading.problems)


def created_at(row: Row) -> datetime | None:
    """A row's ``created_at`` as the import keeps it; None when another time stands in
    for it (it is missing, unreadable or a time PJai cannot hold)."""
    try:
        moment = time_value(row["created_at"])
    except Unreadable:
        return None
    return None if moment is None or time_problem(moment) is not None else moment


def active_since(row: Row) -> datetime | None:
    """When the legacy app last changed this persona if it had it active; else None.

    An unreadable ``is_active`` is not active; unreadable times sort first.
    """
    try:
        if not flag(row["is_active"]):
            return None
    except Unreadable:
        return None
    for column in ("updated_at", "created_at"):
        try:
            if (moment := time_value(row[column])) is not None:
                return moment
        except Unreadable:
            continue
    return datetime.min.replace(tzinfo=UTC)


def memory_drafts(row: Row, memory_id: str, persona_id: str, mapping: Mapping) -> Built:
    """The MemoryImported draft of a ``memory_entities`` row."""
    reading = Reading(row)
    if row["content"] is None:
        raise RowError("content is missing")
    content = required_text(row["content"], "content")
    if not content.strip():
        raise RowError("content is blank")
    created_at, updated_at = reading.times(mapping.now)
    kept, problems = tags(row["tags"])
    reading.problems += problems
    # A deleted memory stays deleted: an unreadable time becomes its last change's.
    deleted = row["deleted_at"] is not None and bool(str(row["deleted_at"]).strip())
    deleted_at = reading.value("deleted_at", time_value, None, "updated_at stands in")
    importance = reading.fraction("importance", mapping.importance, DEFAULT_IMPORTANCE)
    name, summary = reading.text("name"), reading.text("summary")
    fields = {
        "memory_id": memory_id,
        "persona_id": persona_id,
        "content": content,
        "name": name,
        "summary": summary,
        "type": reading.text("type", "note", "note is kept") or "note",
        "tags": mapping.tag(kept, content, name, summary),
        "tier": reading.value("memory_tier", _tier, "warm", "warm is kept"),
        "occurred_at": created_at,
        "source": SOURCE,
        "created_at": created_at,
        "updated_at": updated_at,
        "deleted_at": deleted_at or (updated_at if deleted else None),
        "access_count": reading.value("access_count", number, 0),
        "last_accessed_at": reading.value("last_accessed", time_value, None, "left unset"),
        **({} if importance is None else {"importance": importance}),
    }
    sources = _sources(
        row,
        name="name",
        summary="summary",
        type="type",
        tags="tags",
        importance="importance",
        tier="memory_tier",
        occurred_at="created_at",
        access_count="access_count",
        last_accessed_at="last_accessed",
    )
    sources |= _times(row, mapping.now)
    sources["content"] = Source("content", row["content"], REJECT)
    if deleted:
        stand_in = Source("deleted_at", row["deleted_at"], updated_at, "updated_at stands in")
        sources["deleted_at"] = stand_in
    return Built([Draft(MemoryImported, fields, sources)], reading.problems)


def _tier(value: object) -> Tier:
    tier = TIERS.get(text(value).strip().lower() or "warm")
    if tier is None:
        raise Unreadable("is not active, hot, warm or cold")
    return tier


def conversation_drafts(row: Row, conversation_id: str, persona_id: str) -> Built:
    """The ConversationStarted draft of a ``conversations`` row and one per message.

    A message PJai cannot hold is left out and reported; its index stays its id's.
    """
    reading = Reading(row)
    started_at, _ = reading.times(None)
    try:
        messages = json_value(row["messages"], default=[])
    except Unreadable as exc:
        raise RowError(f"messages {exc}") from None
    if not isinstance(messages, list):
        raise RowError(f"messages is not a JSON list: {messages!r:.80}")
    fields = {
        "conversation_id": conversation_id,
        "persona_id": persona_id,
        "title": reading.text("title"),
        "started_at": started_at,
    }
    sources = _sources(row, title="title", started_at="created_at")
    built = Built([Draft(ConversationStarted, fields, sources)], reading.problems, len(messages))
    for index, message in enumerate(messages):
        draft = _message(built.problems, index, message, fields)
        if draft is not None:
            built.drafts.append(draft)
    return built


def _message(
    problems: list[Problem], index: int, message: Any, conversation: dict[str, Any]
) -> Draft | None:
    """A message's draft; None (and a report) if it has no role or no text.

    A message without a (readable) time takes the conversation's start.
    """
    where = f"messages[{index}]"
    left_out = Source(where, message, REJECT, "the message is not imported")
    if not isinstance(message, dict):
        problems.append(Problem(where, message, f"is not a JSON object; {left_out.then}"))
        return None
    role_key, role = first(message, *ROLE_KEYS)
    content_key, content = first(message, *CONTENT_KEYS)
    for key, value, keys in ((role_key, role, ROLE_KEYS), (content_key, content, CONTENT_KEYS)):
        if not isinstance(value, str) or not value.strip():
            what = (
                f"has no {keys[0]} ({', '.join(keys)})"
                if value is None or isinstance(value, str)
                else f"its {key} is not text but {_json_kind(value)}"
            )
            problems.append(Problem(where, message, f"{what}; {left_out.then}"))
            return None
    key, raw = first(message, *TIME_KEYS)
    for extra, value in message.items():
        if extra not in (role_key, content_key, key, "id") and value is not None:
            reason = f"PJai's messages have no {extra}; left out"
            problems.append(Problem(f"{where}.{extra}", value, reason))
    start = "the conversation's start stands in"
    try:
        sent_at = time_value(raw)
    except Unreadable as exc:
        problems.append(Problem(f"{where}.{key}", raw, f"{exc}; {start}"))
        sent_at = None
    started_at = conversation["started_at"]
    fields = {
        "message_id": f"{conversation['conversation_id']}:{index}",
        "conversation_id": conversation["conversation_id"],
        "persona_id": conversation["persona_id"],
        "role": role.strip(),
        "content": content,
        "sent_at": sent_at or started_at,
    }
    sources = {"sent_at": Source(f"{where}.{key}", raw, started_at, start)}
    return Draft(ConversationMessageAdded, fields, sources, optional=left_out)


def _json_kind(value: object) -> str:
    """What a decoded JSON value is, in words: "a list", "a number"."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "an object" if isinstance(value, dict) else "a list"


def _sources(row: Row, **columns: str) -> dict[str, Source]:
    """Drafted fields taken from a column each, PJai's default standing in."""
    return {path: Source(column, row[column]) for path, column in columns.items()}


def _times(row: Row, now: datetime) -> dict[str, Source]:
    return {
        column: Source(column, row[column], now, "the import time stands in")
        for column in ("created_at", "updated_at")
    }
