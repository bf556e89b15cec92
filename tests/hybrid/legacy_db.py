"""Builds SQLite files in the PJai desktop app's layout for the legacy import tests."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from types import TracebackType
from typing import Any

LEGACY_DDL = """
CREATE TABLE personas (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT,
    personality_traits TEXT, personality_temperament TEXT,
    personality_communication_style TEXT,
    memory_max_memories INTEGER, memory_importance_threshold INTEGER,
    memory_auto_optimize INTEGER, memory_retention_period INTEGER,
    memory_categories TEXT, memory_compression_enabled INTEGER,
    privacy_data_collection INTEGER, privacy_analytics_enabled INTEGER,
    privacy_share_with_researchers INTEGER, privacy_allow_personality_analysis INTEGER,
    privacy_memory_retention INTEGER, privacy_export_data_allowed INTEGER,
    is_active INTEGER DEFAULT 0, created_at TEXT, updated_at TEXT
);
CREATE TABLE memory_entities (
    id TEXT PRIMARY KEY, persona_id TEXT, type TEXT, name TEXT, content TEXT,
    summary TEXT, tags TEXT, importance INTEGER, memory_tier TEXT, embedding TEXT,
    embedding_model TEXT, access_count INTEGER DEFAULT 0, last_accessed TEXT,
    created_at TEXT, updated_at TEXT, deleted_at TEXT
);
CREATE TABLE conversations (
    id TEXT PRIMARY KEY, persona_id TEXT, title TEXT, messages TEXT,
    created_at TEXT, updated_at TEXT
);
"""

JSON_COLUMNS = {"personality_traits", "memory_categories", "tags", "embedding", "messages"}


class LegacyDatabase:
    """A legacy database file being written.

    JSON columns take Python values, which are encoded, or text, which is written as is
    so that tests can store broken JSON.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = sqlite3.connect(path)
        self._conn.executescript(LEGACY_DDL)

    def persona(self, persona_id: str, name: str, **columns: Any) -> None:
        """Add a ``personas`` row."""
        self._insert("personas", {"id": persona_id, "name": name, **columns})

    def memory(self, memory_id: str, persona_id: str, content: str, **columns: Any) -> None:
        """Add a ``memory_entities`` row."""
        values = {"id": memory_id, "persona_id": persona_id, "content": content, **columns}
        self._insert("memory_entities", values)

    def conversation(
        self, conversation_id: str | int, persona_id: str, messages: Any, **columns: Any
    ) -> None:
        """Add a ``conversations`` row."""
        values = {"id": conversation_id, "persona_id": persona_id, "messages": messages}
        self._insert("conversations", {**values, **columns})

    def execute(self, sql: str) -> None:
        """Run SQL on the file, e.g. to alter the layout as an older app version had it."""
        self._conn.execute(sql)

    def close(self) -> None:
        """Commit and close the file."""
        self._conn.commit()
        self._conn.close()

    def __enter__(self) -> LegacyDatabase:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _insert(self, table: str, values: dict[str, Any]) -> None:
        encoded = {
            column: json.dumps(value)
            if column in JSON_COLUMNS and value is not None and not isinstance(value, str)
            else value
            for column, value in values.items()
        }
        names = ", ".join(encoded)
        marks = ", ".join("?" for _ in encoded)
        self._conn.execute(
            f"INSERT INTO {table} ({names}) VALUES ({marks})", list(encoded.values())
        )


def sample(path: Path) -> Path:
    """A legacy database like a real user's, with a few rows that cannot be imported.

    Imported: 4 personas (p-ada active; p-broken without its unreadable traits),
    8 memories (every tier value, one deleted, one whose importance 150 is out of range),
    3 conversations with 5 messages. Rejected: 2 memories, 2 conversations.
    """
    with LegacyDatabase(path) as db:
        db.persona(
            "p-ada",
            "Ada",
            description="Research assistant",
            personality_traits={
                "Openness": 0.9,
                "conscientiousness": 0.75,
                "EXTRAVERSION": 0.3,
                "agreeableness": 0.6,
                "neuroticism": 0.2,
                "curiosity": 0.95,
            },
            personality_temperament="sanguine",
            personality_communication_style="warm and concise",
            memory_max_memories=5000,
            memory_importance_threshold=40,
            memory_auto_optimize=1,
            memory_retention_period=365,
            memory_categories=["work", "family"],
            memory_compression_enabled=1,
            privacy_data_collection=1,
            privacy_analytics_enabled="true",
            privacy_share_with_researchers=0,
            privacy_allow_personality_analysis=1,
            privacy_memory_retention=1,
            privacy_export_data_allowed="false",
            is_active=1,
            created_at="2023-01-05T10:00:00Z",
            updated_at="2024-03-01T12:00:00+02:00",
        )
        db.persona(
            "p-bob",
            "Bob",
            personality_traits={"openness": 40, "humor": 80},
            memory_retention_period=0,
            is_active=1,  # also marked active, but updated before p-ada
            created_at=1672531200,
            updated_at="2023-06-01 08:00:00",
        )
        db.persona("p-cy", "Cy", is_active=0, created_at=1690000000000)
        db.persona("p-broken", "Broken", personality_traits='{"openness": 0.5,', created_at=0)

        times = {"created_at": "2024-01-10T08:00:00Z", "updated_at": "2024-01-11T09:30:00Z"}
        db.memory(
            "m-active",
            "p-ada",
            "Ada's thesis is due in June.",
            type="fact",
            name="Thesis deadline",
            summary="thesis due June",
            tags=["work", "urgent"],
            importance=90,
            memory_tier="active",
            embedding=[0.1, 0.2, 0.3],
            embedding_model="text-embedding-3-small",
            access_count=7,
            last_accessed="2024-02-02T10:00:00Z",
            **times,
        )
        db.memory("m-hot", "p-ada", "Likes green tea.", importance=100, memory_tier="hot", **times)
        db.memory(
            "m-warm", "p-ada", "Met Sam at a conference.", importance=0, memory_tier="warm", **times
        )
        db.memory(
            "m-cold",
            "p-ada",
            "Old phone number.",
            importance=35,
            memory_tier="cold",
            deleted_at="2024-01-20T00:00:00Z",
            **times,
        )
        db.memory("m-null", "p-ada", "No tier recorded.", importance=50, created_at=1704067200)
        db.memory(
            "m-bob",
            "p-bob",
            "Bob plays chess.",
            importance=70,
            memory_tier="",
            created_at=1704067200000,
        )
        db.memory("m-too-important", "p-ada", "Overrated.", importance=150, **times)
        db.memory("m-blank", "p-ada", "   ", importance=50, **times)
        db.memory("m-ghost", "p-ghost", "Nobody's memory.", importance=50, **times)
        db.memory("m-orphan", "p-broken", "Memory of a broken persona.", **times)

        db.conversation(
            "c-plan",
            "p-ada",
            [
                {"role": "user", "content": "Plan my week", "timestamp": "2024-02-01T09:00:00Z"},
                {"sender": "assistant", "text": "Here is a plan.", "created_at": 1706778060},
                {"role": "user", "content": "Thanks"},
            ],
            title="Planning",
            created_at="2024-02-01T08:59:00Z",
            updated_at="2024-02-01T09:05:00Z",
        )
        db.conversation(
            "c-chess",
            "p-bob",
            [
                {"role": "user", "content": "e4", "time": 1706778000000},
                {"role": "assistant", "content": "e5", "time": "2024-02-01T09:00:30"},
            ],
            title="Chess",
            created_at="2024-02-01T09:00:00",
        )
        db.conversation("c-empty", "p-cy", [], created_at="2024-03-01T00:00:00Z")
        db.conversation("c-garbled", "p-ada", '[{"role": "user", "content": ', created_at=0)
        db.conversation("c-no-role", "p-ada", [{"content": "who said this?"}], created_at=0)
    return path
