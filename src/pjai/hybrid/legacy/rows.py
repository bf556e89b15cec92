"""Legacy rows as PJai events: column mapping, value parsing, one row at a time.

Pure functions of a row's values; :mod:`pjai.hybrid.legacy.run` reads the file and
commits what they return.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pjai.errors import PjaiError
from pjai.hybrid.flags import parse_bool
from pjai.schema import (
    BigFive,
    ConversationMessageAdded,
    ConversationStarted,
    Event,
    MemoryConfig,
    MemoryImported,
    PersonaImported,
    Personality,
    PrivacySettings,
)
from pjai.schema.fields import Tier

__all__ = [
    "COLUMNS",
    "NOT_IMPORTED",
    "REQUIRED",
    "SOURCE",
    "TARGETS",
    "Row",
    "RowError",
    "conversation_events",
    "flag",
    "memory_event",
    "persona_event",
    "row_id_of",
    "times",
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
BIG_FIVE = frozenset(BigFive.__struct_fields__)
EPOCH_MS = 1e11  # larger epoch numbers are milliseconds: 1e11 s is past the year 5000

Row = dict[str, Any]


class RowError(PjaiError):
    """A legacy row cannot become events; the message says why."""


def persona_event(row: Row, persona_id: str) -> PersonaImported:
    created_at, updated_at = times(row)
    flag(row["is_active"], "is_active", default=False)  # read later; a bad value rejects now
    retention = number(row["memory_retention_period"], "memory_retention_period")
    memory: dict[str, Any] = {
        "auto_optimize": flag(row["memory_auto_optimize"], "memory_auto_optimize", default=True),
        "retention_days": retention or None,
    }
    if limit := number(row["memory_max_memories"], "memory_max_memories"):
        memory["max_memories"] = limit
    threshold = number(row["memory_importance_threshold"], "memory_importance_threshold")
    if threshold is not None:
        memory["importance_threshold"] = threshold / 100
    defaults = PrivacySettings()
    privacy = {
        name: flag(row[column], column, default=getattr(defaults, name))
        for name, column in PRIVACY.items()
    }
    return PersonaImported(
        persona_id=persona_id,
        name=required(row, "name"),
        description=text(row["description"]),
        personality=personality(row),
        communication_style=text(row["personality_communication_style"]),
        memory=MemoryConfig(**memory),
        privacy=PrivacySettings(**privacy),
        source=SOURCE,
        created_at=created_at,
        updated_at=updated_at,
    )


def personality(row: Row) -> Personality:
    traits = json_value(row["personality_traits"], "personality_traits", default={})
    if not isinstance(traits, dict):
        raise RowError(f"personality_traits is not a JSON object: {traits!r:.80}")
    for name, value in traits.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RowError(f"personality trait {name!r} is not a number: {value!r:.80}")
    values = traits.values()
    fractions = all(0 <= v <= 1 for v in values) and any(isinstance(v, float) for v in values)
    big_five: dict[str, int] = {}
    custom: dict[str, int] = {}
    for name, value in traits.items():
        key = name.strip().lower()
        target, key = (big_five, key) if key in BIG_FIVE else (custom, name)
        if key in target:
            raise RowError(f"personality_traits names {key!r} twice")
        target[key] = round(value * 100 if fractions else value)
    return Personality(
        big_five=BigFive(**big_five),
        custom_traits=custom,
        type=text(row["personality_temperament"]),
    )


def memory_event(row: Row, memory_id: str, persona_id: str) -> MemoryImported:
    created_at, updated_at = times(row)
    tags = json_value(row["tags"], "tags", default=[])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise RowError(f"tags is not a JSON list of strings: {tags!r:.80}")
    tier = TIERS.get(text(row["memory_tier"]).strip().lower() or "warm")
    if tier is None:
        raise RowError(f"memory_tier {row['memory_tier']!r} is not active, hot, warm or cold")
    optional: dict[str, Any] = {}
    if (importance := number(row["importance"], "importance")) is not None:
        optional["importance"] = importance / 100
    return MemoryImported(
        memory_id=memory_id,
        persona_id=persona_id,
        content=required(row, "content"),
        name=text(row["name"]),
        summary=text(row["summary"]),
        type=text(row["type"]) or "note",
        tags=[tag.strip() for tag in tags],
        tier=tier,
        occurred_at=created_at,
        source=SOURCE,
        created_at=created_at,
        updated_at=updated_at,
        deleted_at=time_value(row["deleted_at"], "deleted_at"),
        access_count=number(row["access_count"], "access_count") or 0,
        last_accessed_at=time_value(row["last_accessed"], "last_accessed"),
        **optional,
    )


def conversation_events(row: Row, conversation_id: str, persona_id: str) -> list[Event]:
    started_at = time_value(row["created_at"], "created_at") or time_value(
        row["updated_at"], "updated_at"
    )
    messages = json_value(row["messages"], "messages", default=[])
    if not isinstance(messages, list):
        raise RowError(f"messages is not a JSON list: {messages!r:.80}")
    events: list[Event] = [
        ConversationStarted(
            conversation_id=conversation_id,
            persona_id=persona_id,
            title=text(row["title"]),
            started_at=started_at,
        )
    ]
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise RowError(f"message {index} is not a JSON object: {message!r:.80}")
        role, content = first(message, "role", "sender"), first(message, "content", "text")
        if not isinstance(role, str):
            raise RowError(f"message {index} has no role or sender")
        if not isinstance(content, str):
            raise RowError(f"message {index} has no text in content or text")
        at = time_value(first(message, "timestamp", "created_at", "time"), f"message {index} time")
        events.append(
            ConversationMessageAdded(
                message_id=f"{conversation_id}:{index}",
                conversation_id=conversation_id,
                persona_id=persona_id,
                role=role,
                content=content,
                sent_at=at or started_at,
            )
        )
    return events


def row_id_of(value: object) -> str | None:
    return None if value is None else str(value)


def text(value: object) -> str:
    return "" if value is None else str(value)


def required(row: Row, column: str) -> str:
    if row[column] is None:
        raise RowError(f"{column} is missing")
    return str(row[column])


def first(message: dict[str, Any], *keys: str) -> Any:
    return next((message[key] for key in keys if message.get(key) is not None), None)


def json_value(value: object, column: str, *, default: object) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    try:
        return json.loads(value) if isinstance(value, str | bytes) else value
    except ValueError as exc:
        raise RowError(f"{column} is not valid JSON: {exc}") from exc


def number(value: object, column: str) -> Any:
    """An int (or a float with a fraction) from a number or numeric text; None for NULL."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise RowError(f"{column} {value!r} is not a number") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RowError(f"{column} {value!r} is not a number")
    return int(value) if isinstance(value, float) and value.is_integer() else value


def flag(value: object, column: str, *, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    try:
        if isinstance(value, str):
            return parse_bool(value, column)
    except PjaiError:
        pass
    raise RowError(f"{column} {value!r} is not a boolean (0/1, true/false)")


def time_value(value: object, column: str) -> datetime | None:
    """ISO-8601 text (naive means UTC) or epoch seconds/milliseconds, in UTC; NULL is None."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    number: Any = value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(value.strip())
            except ValueError:
                raise RowError(f"{column} {value!r} is not ISO-8601 nor epoch seconds") from None
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise RowError(f"{column} {value!r} is not a time")
    try:
        return datetime.fromtimestamp(number / 1000 if abs(number) >= EPOCH_MS else number, UTC)
    except (OverflowError, OSError, ValueError):
        raise RowError(f"{column} {value!r} is not a time") from None


def times(row: Row) -> tuple[datetime, datetime]:
    """A row's created_at and updated_at; either stands in for the other when missing."""
    created_at = time_value(row["created_at"], "created_at")
    updated_at = time_value(row["updated_at"], "updated_at")
    created_at = created_at or updated_at
    if created_at is None:
        raise RowError("created_at and updated_at are both missing")
    return created_at, updated_at or created_at
