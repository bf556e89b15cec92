"""Builds databases the way the PJai desktop app does: its DDL, its defaults, its writes.

The app creates its tables with column defaults (``personality_traits`` ``'[]'``,
``memory_tier`` ``'active'``, times ``CURRENT_TIMESTAMP``) and triggers that stamp
``updated_at`` on every update. Its repositories insert only the columns they set and
leave the rest to those defaults; they store JSON with ``JSON.stringify`` and change
rows with ``UPDATE`` (activating a persona, moving a memory to another tier, counting
an access, deleting a memory softly). :class:`DesktopApp` does the same, so the tests
import what a user's database holds rather than what the importer expects.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

__all__ = ["DesktopApp", "desktop_ddl"]


def desktop_ddl(importance: Literal["0-1", "0-100"]) -> str:
    """The app's schema; its releases store memory importance as 0-1 or as 0-100."""
    importance_column = "REAL DEFAULT 0.5" if importance == "0-1" else "INTEGER DEFAULT 50"
    return f"""
CREATE TABLE IF NOT EXISTS personas (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT DEFAULT '',
    personality_traits TEXT DEFAULT '[]',
    personality_temperament TEXT DEFAULT 'balanced',
    personality_communication_style TEXT DEFAULT 'conversational',
    memory_max_memories INTEGER DEFAULT 1000,
    memory_importance_threshold INTEGER DEFAULT 50,
    memory_auto_optimize BOOLEAN DEFAULT TRUE,
    memory_retention_period INTEGER DEFAULT 30,
    memory_categories TEXT DEFAULT '["conversation","learning","preference","fact"]',
    memory_compression_enabled BOOLEAN DEFAULT TRUE,
    privacy_data_collection BOOLEAN DEFAULT TRUE,
    privacy_analytics_enabled BOOLEAN DEFAULT FALSE,
    privacy_share_with_researchers BOOLEAN DEFAULT FALSE,
    privacy_allow_personality_analysis BOOLEAN DEFAULT TRUE,
    privacy_memory_retention BOOLEAN DEFAULT TRUE,
    privacy_export_data_allowed BOOLEAN DEFAULT TRUE,
    is_active BOOLEAN DEFAULT FALSE,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS memory_entities (
    id TEXT PRIMARY KEY,
    persona_id TEXT NOT NULL,
    type TEXT NOT NULL,
    name TEXT DEFAULT '',
    content TEXT NOT NULL,
    summary TEXT DEFAULT '',
    tags TEXT DEFAULT '[]',
    importance {importance_column},
    memory_tier TEXT DEFAULT 'active',
    embedding TEXT DEFAULT NULL,
    embedding_model TEXT DEFAULT NULL,
    access_count INTEGER DEFAULT 0,
    last_accessed DATETIME DEFAULT NULL,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    deleted_at DATETIME DEFAULT NULL,
    FOREIGN KEY (persona_id) REFERENCES personas(id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    persona_id TEXT NOT NULL,
    title TEXT NOT NULL,
    messages TEXT DEFAULT '[]',
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    FOREIGN KEY (persona_id) REFERENCES personas(id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS idx_personas_active ON personas(is_active);
CREATE INDEX IF NOT EXISTS idx_memory_entities_persona_id ON memory_entities(persona_id);
CREATE INDEX IF NOT EXISTS idx_conversations_persona_id ON conversations(persona_id);
CREATE TRIGGER IF NOT EXISTS trigger_personas_updated_at AFTER UPDATE ON personas
FOR EACH ROW BEGIN
    UPDATE personas SET updated_at = CURRENT_TIMESTAMP WHERE id = NEW.id;
END;
CREATE TRIGGER IF NOT EXISTS trigger_memory_entities_updated_at AFTER UPDATE ON memory_entities
FOR EACH ROW BEGIN
    UPDATE memory_entities SET updated_at = CURRENT_TIMESTAMP WHERE id = NEW.id;
END;
CREATE TRIGGER IF NOT EXISTS trigger_conversations_updated_at AFTER UPDATE ON conversations
FOR EACH ROW BEGIN
    UPDATE conversations SET updated_at = CURRENT_TIMESTAMP WHERE id = NEW.id;
END;
"""


PERSONA_SETTINGS = {
    "description": "description",
    "temperament": "personality_temperament",
    "communication_style": "personality_communication_style",
    "max_memories": "memory_max_memories",
    "importance_threshold": "memory_importance_threshold",
    "retention_period": "memory_retention_period",
}


class DesktopApp:
    """A desktop app database being written through the app's own kinds of statements.

    ``importance`` picks the release's scale; ``tags`` how its memory repository stores
    a list of tags: ``JSON.stringify(tags)`` or ``tags.join(",")``.
    """

    def __init__(
        self,
        path: Path,
        *,
        importance: Literal["0-1", "0-100"] = "0-1",
        tags: Literal["json", "comma"] = "json",
    ) -> None:
        self.path = path
        self.tags = tags
        self._conn = sqlite3.connect(path)
        self._conn.executescript(desktop_ddl(importance))
        self._ids = 0

    def create_persona(self, name: str, *, traits: Any = None, **settings: Any) -> str:
        """Insert a persona as the app's PersonaRepository.create does; its id.

        ``traits`` is stored with ``JSON.stringify`` when given (the default ``'[]'``
        otherwise); ``settings`` name keys of ``PERSONA_SETTINGS``.
        """
        persona_id = self._id("persona")
        values: dict[str, Any] = {"id": persona_id, "name": name}
        if traits is not None:
            values["personality_traits"] = json.dumps(traits)
        values |= {PERSONA_SETTINGS[key]: value for key, value in settings.items()}
        self._insert("personas", values)
        return persona_id

    def activate(self, persona_id: str) -> None:
        """Make ``persona_id`` the active persona, as the app's ``activate`` does."""
        self._conn.execute("UPDATE personas SET is_active = FALSE")
        self._conn.execute("UPDATE personas SET is_active = TRUE WHERE id = ?", [persona_id])

    def add_memory(
        self,
        persona_id: str,
        content: str,
        *,
        type: str = "conversation",
        tags: list[Any] | str | None = None,
        **columns: Any,
    ) -> str:
        """Insert a memory as the app's MemoryRepository.create does; its id.

        A list of ``tags`` is stored as this app stores tags; text is stored as it is.
        """
        memory_id = self._id("memory")
        values = {"id": memory_id, "persona_id": persona_id, "type": type, "content": content}
        if isinstance(tags, list):
            values["tags"] = json.dumps(tags) if self.tags == "json" else ",".join(tags)
        elif tags is not None:
            values["tags"] = tags
        self._insert("memory_entities", values | columns)
        return memory_id

    def move_to_tier(self, memory_id: str, tier: str) -> None:
        """Move a memory to another tier (``updateTier``)."""
        self._conn.execute(
            "UPDATE memory_entities SET memory_tier = ? WHERE id = ?", [tier, memory_id]
        )

    def access(self, memory_id: str) -> None:
        """Count one access to a memory (``markAccessed``)."""
        self._conn.execute(
            "UPDATE memory_entities SET access_count = access_count + 1,"
            " last_accessed = CURRENT_TIMESTAMP WHERE id = ?",
            [memory_id],
        )

    def delete_memory(self, memory_id: str) -> None:
        """Delete a memory softly, as the app does."""
        self._conn.execute(
            "UPDATE memory_entities SET deleted_at = CURRENT_TIMESTAMP WHERE id = ?", [memory_id]
        )

    def save_conversation(
        self, persona_id: str, title: str, messages: list[Any] | str | None = None
    ) -> str:
        """Insert a conversation; its messages with ``JSON.stringify`` (``'[]'`` if none)."""
        conversation_id = self._id("conversation")
        values: dict[str, Any] = {"id": conversation_id, "persona_id": persona_id, "title": title}
        if messages is not None:
            values["messages"] = messages if isinstance(messages, str) else json.dumps(messages)
        self._insert("conversations", values)
        return conversation_id

    def execute(self, sql: str, parameters: list[Any] | None = None) -> None:
        """Run SQL on the file, as a user or an older release might have."""
        self._conn.execute(sql, parameters or [])

    def close(self) -> None:
        """Commit and close the file."""
        self._conn.commit()
        self._conn.close()

    def __enter__(self) -> DesktopApp:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _id(self, kind: str) -> str:
        # Like the app's `${kind}_${Date.now()}_${random}`, but repeatable.
        self._ids += 1
        return f"{kind}_{1_700_000_000_000 + self._ids}_{self._ids:09x}"

    def _insert(self, table: str, values: dict[str, Any]) -> None:
        names = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        self._conn.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", list(values.values()))
