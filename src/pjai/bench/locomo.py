"""LoCoMo-format conversations, as ``pjai bench recall`` and ``pjai bench autolink``
read them: each turn a memory of the file's persona, each QA with evidence a question."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pjai.errors import ConfigError
from pjai.memory.conversations import follows
from pjai.schema import Event, MemoryAdded, PersonaCreated

__all__ = ["Conversation", "Question", "load_conversations"]


@dataclass(frozen=True, slots=True)
class Question:
    """A QA with the dialogue ids of the turns that answer it."""

    text: str
    category: int
    evidence: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Conversation:
    """One LoCoMo-format file: its turns as memory events and its questions."""

    name: str
    persona_id: str
    events: list[Event]
    questions: list[Question]
    skipped_evidence: int


def _session_time(text: str) -> datetime:
    # "1:56 pm on 8 May, 2023"
    try:
        return datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)
    except ValueError as exc:
        raise ConfigError(f"session date {text!r} is not like '1:56 pm on 8 May, 2023'") from exc


def _turn_content(turn: dict[str, Any]) -> str:
    text = f"{turn['speaker']}: {turn.get('text', '')}".strip()
    caption = turn.get("blip_caption")
    return f"{text} [shared a photo: {caption}]" if caption else text


def load_conversations(directory: Path, sessions: int | None = None) -> list[Conversation]:
    """Every ``*.json`` LoCoMo-format file of ``directory``, in name order; with
    ``sessions``, only each conversation's first ``sessions`` sessions and the
    questions whose evidence lies in them."""
    files = sorted(Path(directory).glob("*.json"))
    if not files:
        raise ConfigError(f"{directory} holds no LoCoMo-format .json files")
    conversations = []
    for file in files:
        try:
            data = json.loads(file.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{file} is not readable JSON: {exc}") from exc
        persona_id = f"locomo-{file.stem}"
        speakers = f"{data.get('speaker_a', '?')} and {data.get('speaker_b', '?')}"
        events: list[Event] = [
            PersonaCreated(persona_id=persona_id, name=f"LoCoMo {file.stem}: {speakers}")
        ]
        turns: set[str] = set()
        session = 1
        while f"session_{session}" in data and (sessions is None or session <= sessions):
            when = _session_time(data[f"session_{session}_date_time"])
            previous, previous_id = "", None
            for turn in data[f"session_{session}"]:
                dia_id = turn["dia_id"]
                content = _turn_content(turn)
                memory_id = f"{persona_id}:{dia_id}"
                if dia_id not in turns:
                    turns.add(dia_id)
                    events.append(
                        MemoryAdded(
                            memory_id=memory_id,
                            persona_id=persona_id,
                            name=str(turn["speaker"]),
                            content=content,
                            summary=previous,
                            type="conversation",
                            occurred_at=when,
                        )
                    )
                    if previous_id is not None:  # as ingest links each turn to the one before
                        events.append(follows(persona_id, previous_id, memory_id))
                previous, previous_id = content, memory_id
            session += 1
        questions, skipped = [], 0
        for qa in data.get("qa", []):
            # A few items list several turns in one string: "D8:6; D9:17".
            cited = [part.strip() for e in qa.get("evidence", []) for part in e.split(";")]
            cited = [e for e in cited if e]
            evidence = tuple(dict.fromkeys(e for e in cited if e in turns))
            if sessions is not None and len(evidence) < len(cited):
                continue  # asks about a session left out
            skipped += len(cited) - len(evidence)
            if evidence:
                questions.append(Question(qa["question"], int(qa["category"]), evidence))
        conversations.append(Conversation(file.stem, persona_id, events, questions, skipped))
    return conversations
