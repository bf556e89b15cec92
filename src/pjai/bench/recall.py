"""``pjai bench recall``: retrieval quality on LoCoMo-format conversations.

Each turn of each conversation becomes a memory of one persona (one persona per file),
``occurred_at`` its session's date, content ``"Speaker: text"`` (a shared photo's
caption appended) and, as ``pjai memory ingest-conversation`` does, summary the turn it
answers (the previous one in its session). Every QA with evidence is searched with its
question among that persona's memories; recall@k is the share of the evidence turns in
the top k, hit@k whether any is. Reported per method (keyword; semantic and hybrid when
the embeddings extra is installed), overall and per category, with search latency.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pjai.bench.stats import ms, percentile
from pjai.errors import ConfigError
from pjai.memory.embeddings import Embeddings, EmbeddingsUnavailable
from pjai.memory.search import Method, SearchFilter, search
from pjai.schema import Event, MemoryAdded, PersonaCreated
from pjai.schema.types import Progress
from pjai.store import Store

__all__ = ["Conversation", "load_conversations", "run_recall_bench"]

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
LATENCY_MEMORIES = 10_000


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


def load_conversations(directory: Path) -> list[Conversation]:
    """Every ``*.json`` LoCoMo-format file of ``directory``, in name order."""
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
        while f"session_{session}" in data:
            when = _session_time(data[f"session_{session}_date_time"])
            previous = ""
            for turn in data[f"session_{session}"]:
                dia_id = turn["dia_id"]
                content = _turn_content(turn)
                if dia_id not in turns:
                    turns.add(dia_id)
                    events.append(
                        MemoryAdded(
                            memory_id=f"{persona_id}:{dia_id}",
                            persona_id=persona_id,
                            name=str(turn["speaker"]),
                            content=content,
                            summary=previous,
                            type="conversation",
                            occurred_at=when,
                        )
                    )
                previous = content
            session += 1
        questions, skipped = [], 0
        for qa in data.get("qa", []):
            # A few items list several turns in one string: "D8:6; D9:17".
            cited = [part.strip() for e in qa.get("evidence", []) for part in e.split(";")]
            cited = [e for e in cited if e]
            evidence = tuple(dict.fromkeys(e for e in cited if e in turns))
            skipped += len(cited) - len(evidence)
            if evidence:
                questions.append(Question(qa["question"], int(qa["category"]), evidence))
        conversations.append(Conversation(file.stem, persona_id, events, questions, skipped))
    return conversations


def _measure(
    store: Store,
    conversations: list[Conversation],
    method: Method,
    embeddings: Embeddings | None,
) -> dict[str, Any]:
    totals: dict[str, list[float]] = defaultdict(list)
    per_category: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    latencies: list[float] = []
    for conversation in conversations:
        where = SearchFilter(persona_id=conversation.persona_id)
        for question in conversation.questions:
            started = time.perf_counter()
            hits = search(
                store, question.text, where, limit=10, method=method, embeddings=embeddings
            )
            latencies.append(time.perf_counter() - started)
            found = [hit.memory_id.split(":", 1)[1] for hit in hits]
            category = CATEGORIES.get(question.category, str(question.category))
            for k in (5, 10):
                top = set(found[:k])
                recall = sum(e in top for e in question.evidence) / len(question.evidence)
                hit = 1.0 if top & set(question.evidence) else 0.0
                for bucket in (totals, per_category[category]):
                    bucket[f"recall@{k}"].append(recall)
                    bucket[f"hit@{k}"].append(hit)

    def mean(values: Iterable[float]) -> float:
        values = list(values)
        return round(sum(values) / len(values), 4) if values else 0.0

    return {
        **{key: mean(values) for key, values in sorted(totals.items())},
        "by_category": {
            category: {
                "questions": len(figures["hit@5"]),
                **{k: mean(v) for k, v in sorted(figures.items())},
            }
            for category, figures in sorted(per_category.items())
        },
        "questions": len(latencies),
        "p50_ms": ms(percentile(latencies, 50)),
        "p95_ms": ms(percentile(latencies, 95)),
    }


def _keyword_latency_at(store: Store, conversations: list[Conversation], target: int) -> float:
    """p95 of keyword searches once the store holds ``target`` memories."""
    count = store.query("SELECT count(*) AS n FROM memories")[0].n
    source = [e for c in conversations for e in c.events if isinstance(e, MemoryAdded)]
    store.commit(PersonaCreated(persona_id="filler", name="Filler"))
    batch: list[Event] = []
    for i in range(max(0, target - count)):
        model = source[i % len(source)]
        batch.append(
            MemoryAdded(
                memory_id=f"filler:{i}",
                persona_id="filler",
                content=model.content,
                type="conversation",
            )
        )
        if len(batch) == 1_000:
            store.commit(*batch)
            batch = []
    if batch:
        store.commit(*batch)
    latencies = []
    for conversation in conversations:
        where = SearchFilter(persona_id=conversation.persona_id)
        for question in conversation.questions:
            started = time.perf_counter()
            search(store, question.text, where, limit=10)
            latencies.append(time.perf_counter() - started)
    return ms(percentile(latencies, 95))


def run_recall_bench(
    data: Path,
    *,
    workdir: Path,
    semantic: bool = True,
    latency_memories: int = LATENCY_MEMORIES,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Load ``data`` into a store in ``workdir`` and measure retrieval per method.

    Keyword latency is measured again once filler memories bring the store to
    ``latency_memories`` (``keyword_p95_ms_at_scale``).
    """
    conversations = load_conversations(data)
    result: dict[str, Any] = {
        "benchmark": "recall",
        "conversations": [c.name for c in conversations],
        "memories": sum(len(c.events) - 1 for c in conversations),
        "questions": sum(len(c.questions) for c in conversations),
        "skipped_evidence": sum(c.skipped_evidence for c in conversations),
    }
    with Store.open(workdir / "store.db") as store:
        for conversation in conversations:
            store.commit(*conversation.events)
        result["keyword"] = _measure(store, conversations, "keyword", None)
        embeddings = None
        if semantic:
            try:
                embeddings = Embeddings.open(workdir)
            except EmbeddingsUnavailable as exc:
                result["semantic_unavailable"] = str(exc)
        if embeddings is not None:
            embeddings.index(store)
            result["semantic"] = _measure(store, conversations, "semantic", embeddings)
            result["hybrid"] = _measure(store, conversations, "hybrid", embeddings)
            result["embeddings_engine"] = embeddings.engine
            embeddings.close()
        result["keyword_p95_ms_at_scale"] = _keyword_latency_at(
            store, conversations, latency_memories
        )
        result["memories_at_latency"] = store.query("SELECT count(*) AS n FROM memories")[0].n
    return result
