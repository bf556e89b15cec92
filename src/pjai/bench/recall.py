"""``pjai bench recall``: retrieval quality on LoCoMo-format conversations.

Each turn of each conversation becomes a memory of one persona (one persona per file),
``occurred_at`` its session's date, content ``"Speaker: text"`` (a shared photo's
caption appended) and, as ``pjai memory ingest-conversation`` does, summary the turn it
answers (the previous one in its session). Every QA with evidence is searched with its
question among that persona's memories; recall@k is the share of the evidence turns in
the top k, hit@k whether any is (turn level); session_hit@1 whether the first hit is in
a session holding evidence, session_recall@10 the share of those sessions among the top
10's (session level, as many published figures are). Reported per method (keyword;
semantic and hybrid when the model can be used), overall and per category, with
search latency.

With ``--folds`` the ranking parameters (:class:`pjai.memory.search.Tuning`: the
summary's weight, context expansion, the weight of dates in the question; for hybrid
also the keyword share) are chosen leave-one-conversation-out: for each conversation,
the best setting on the others is measured on it. Nothing is tuned on the conversation
it is reported on.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import product
from pathlib import Path
from typing import Any

from pjai.bench.stats import ms, percentile
from pjai.errors import ConfigError
from pjai.memory.conversations import follows
from pjai.memory.embeddings import Embeddings, EmbeddingsUnavailable
from pjai.memory.search import (
    HYBRID_DEPTH,
    TUNING,
    Method,
    SearchFilter,
    Tuning,
    fuse,
    rerank,
    search,
)
from pjai.memory.when import time_window
from pjai.schema import Event, MemoryAdded, PersonaCreated
from pjai.schema.types import Progress
from pjai.store import Store

__all__ = ["Answer", "Conversation", "load_conversations", "run_recall_bench"]

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


@dataclass(frozen=True, slots=True)
class Answer:
    """What the search for one question returned: dialogue ids, best first."""

    question: Question
    found: list[str]
    seconds: float


def _session(dia_id: str) -> str:
    """The session of a dialogue id: ``D3:5`` is turn 5 of session 3."""
    return dia_id.partition(":")[0]


def _answers(
    store: Store,
    conversation: Conversation,
    method: Method,
    embeddings: Embeddings | None,
    tuning: Tuning = TUNING,
) -> list[Answer]:
    where = SearchFilter(persona_id=conversation.persona_id)
    answers = []
    for question in conversation.questions:
        started = time.perf_counter()
        hits = search(
            store,
            question.text,
            where,
            limit=10,
            method=method,
            embeddings=embeddings,
            tuning=tuning,
        )
        seconds = time.perf_counter() - started
        answers.append(Answer(question, [_dia_id(hit.memory_id) for hit in hits], seconds))
    return answers


def _dia_id(memory_id: str) -> str:
    return memory_id.split(":", 1)[1]


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return round(sum(values) / len(values), 4) if values else 0.0


def _score(answers: list[Answer], *, latency: bool = True) -> dict[str, Any]:
    """Turn-level recall@k and hit@k (k = 5, 10), session-level hit@1 and recall@10,
    overall and per category; with ``latency``, search p50 and p95."""
    totals: dict[str, list[float]] = defaultdict(list)
    per_category: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for answer in answers:
        evidence = answer.question.evidence
        category = CATEGORIES.get(answer.question.category, str(answer.question.category))
        figures: dict[str, float] = {}
        for k in (5, 10):
            top = set(answer.found[:k])
            figures[f"recall@{k}"] = sum(e in top for e in evidence) / len(evidence)
            figures[f"hit@{k}"] = 1.0 if top & set(evidence) else 0.0
        # Session level, as many published figures are: the sessions that hold evidence.
        wanted = {_session(e) for e in evidence}
        sessions = {_session(d) for d in answer.found[:10]}
        first = _session(answer.found[0]) if answer.found else None
        figures["session_hit@1"] = 1.0 if first in wanted else 0.0
        figures["session_recall@10"] = len(wanted & sessions) / len(wanted)
        for name, value in figures.items():
            totals[name].append(value)
            per_category[category][name].append(value)
    result: dict[str, Any] = {
        **{key: _mean(values) for key, values in sorted(totals.items())},
        "by_category": {
            category: {
                "questions": len(figures["hit@5"]),
                **{k: _mean(v) for k, v in sorted(figures.items())},
            }
            for category, figures in sorted(per_category.items())
        },
        "questions": len(answers),
    }
    if latency:
        seconds = [a.seconds for a in answers]
        result["p50_ms"] = ms(percentile(seconds, 50))
        result["p95_ms"] = ms(percentile(seconds, 95))
    return result


def _measure(
    store: Store,
    conversations: list[Conversation],
    method: Method,
    embeddings: Embeddings | None,
) -> dict[str, Any]:
    answers = [a for c in conversations for a in _answers(store, c, method, embeddings)]
    return _score(answers)


SUMMARY_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
"""The summary weights a fold chooses from."""
KEYWORD_WEIGHTS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
"""The hybrid keyword shares a fold chooses from."""
NEIGHBOUR_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5)
"""The context expansion weights a fold chooses from (0: none)."""
DATE_WEIGHTS = (0.0, 0.2, 0.5)
"""The weights of dates in the question a fold chooses from (0: none)."""
_FOLD_FIGURES = ("recall@5", "recall@10", "hit@5", "hit@10", "session_hit@1", "session_recall@10")

Runs = dict[Tuning, dict[str, list[Answer]]]
"""Per tuning, per conversation, the answers to its questions."""


def _fused_runs(store: Store, conversations: list[Conversation], embeddings: Embeddings) -> Runs:
    """Hybrid answers for every (summary weight, keyword share): each question's
    semantic list is computed once, its keyword list once per summary weight, and they
    are fused for each share, as :func:`search` fuses them."""
    depth = 10 * HYBRID_DEPTH
    runs: Runs = defaultdict(dict)
    for conversation in conversations:
        where = SearchFilter(persona_id=conversation.persona_id)
        semantic = [embeddings.search(store, q.text, where, depth) for q in conversation.questions]
        windows = [time_window(q.text) for q in conversation.questions]
        for summary in SUMMARY_WEIGHTS:
            plain = Tuning(summary_weight=summary, date_weight=0.0)  # dates count once, below
            keyword = [
                search(store, q.text, where, limit=depth, tuning=plain)
                for q in conversation.questions
            ]
            for share in KEYWORD_WEIGHTS:
                fused = [
                    fuse(k, s, depth, keyword_weight=share)
                    for k, s in zip(keyword, semantic, strict=True)
                ]
                for near, dated in product(NEIGHBOUR_WEIGHTS, DATE_WEIGHTS):
                    tuning = Tuning(
                        summary_weight=summary,
                        keyword_weight=share,
                        neighbour_weight=near,
                        date_weight=dated,
                    )
                    # As hybrid search() ranks: dates only when they weigh.
                    tops = (
                        rerank(store, f, where, 10, tuning, w if dated else None)
                        for f, w in zip(fused, windows, strict=True)
                    )
                    runs[tuning][conversation.name] = [
                        Answer(q, [_dia_id(h.memory_id) for h in top], 0.0)
                        for q, top in zip(conversation.questions, tops, strict=True)
                    ]
    return runs


def _cross_validate(
    conversations: list[Conversation], runs: Runs, tuned: tuple[str, ...]
) -> dict[str, Any]:
    """Leave one conversation out: the tuning with the best recall@10 on the others'
    questions is measured on the held-out one (ties go to the one nearest the
    defaults). Per fold, the mean, minimum and maximum over folds, and the held-out
    answers pooled (with categories)."""

    def distance(tuning: Tuning) -> float:
        return sum(abs(float(getattr(tuning, n)) - float(getattr(TUNING, n))) for n in tuned)

    folds, held_answers = [], []
    for held in conversations:
        train = [c.name for c in conversations if c is not held]

        def trained(tuning: Tuning, train: list[str] = train) -> float:
            answers = [a for name in train for a in runs[tuning][name]]
            return float(_score(answers, latency=False)["recall@10"])

        chosen = max(runs, key=lambda t: (trained(t), -distance(t)))
        scored = _score(runs[chosen][held.name], latency=False)
        held_answers += runs[chosen][held.name]
        folds.append(
            {
                "held_out": held.name,
                "chosen": {name: getattr(chosen, name) for name in tuned},
                "train_recall@10": trained(chosen),
                **{name: scored[name] for name in _FOLD_FIGURES},
                "questions": scored["questions"],
            }
        )
    return {
        "per_fold": folds,
        "mean": {n: _mean(f[n] for f in folds) for n in _FOLD_FIGURES},
        "min": {n: min(f[n] for f in folds) for n in _FOLD_FIGURES},
        "max": {n: max(f[n] for f in folds) for n in _FOLD_FIGURES},
        "pooled": _score(held_answers, latency=False),
    }


def _folds(
    store: Store, conversations: list[Conversation], embeddings: Embeddings | None
) -> dict[str, Any]:
    """Keyword (summary weight chosen) and, with embeddings, hybrid (summary weight and
    keyword share chosen) measured leave-one-conversation-out."""
    if len(conversations) < 2:
        raise ConfigError("--folds needs at least two conversations: one is held out of each")
    tunings = [
        Tuning(summary_weight=w, neighbour_weight=n, date_weight=d)
        for w, n, d in product(SUMMARY_WEIGHTS, NEIGHBOUR_WEIGHTS, DATE_WEIGHTS)
    ]
    keyword: Runs = {
        t: {c.name: _answers(store, c, "keyword", None, t) for c in conversations} for t in tunings
    }
    result = {
        "keyword": _cross_validate(
            conversations, keyword, ("summary_weight", "neighbour_weight", "date_weight")
        )
    }
    if embeddings is not None:
        result["hybrid"] = _cross_validate(
            conversations,
            _fused_runs(store, conversations, embeddings),
            ("summary_weight", "keyword_weight", "neighbour_weight", "date_weight"),
        )
    return result


def _latency_at(
    store: Store, conversations: list[Conversation], target: int, embeddings: Embeddings | None
) -> dict[str, float]:
    """p95 of each method's searches once the store holds ``target`` memories: copies
    of the conversations' memories, each in its conversation's persona, so that every
    search runs over a persona grown with the store. A copy's text already has a vector,
    so it is indexed without encoding."""
    count = store.query("SELECT count(*) AS n FROM memories")[0].n
    source = [e for c in conversations for e in c.events if isinstance(e, MemoryAdded)]
    batch: list[Event] = []
    for i in range(max(0, target - count)):
        model = source[i % len(source)]
        batch.append(
            MemoryAdded(
                memory_id=f"{model.persona_id}:copy{i}",
                persona_id=model.persona_id,
                name=model.name,
                content=model.content,
                summary=model.summary,
                type="conversation",
                occurred_at=model.occurred_at,
            )
        )
        if len(batch) == 1_000:
            store.commit(*batch)
            batch = []
    if batch:
        store.commit(*batch)
    methods: list[Method] = ["keyword"]
    if embeddings is not None:
        embeddings.index(store)
        methods += ["semantic", "hybrid"]
    result = {}
    for method in methods:
        latencies = []
        for conversation in conversations:
            where = SearchFilter(persona_id=conversation.persona_id)
            for question in conversation.questions:
                started = time.perf_counter()
                search(store, question.text, where, limit=10, method=method, embeddings=embeddings)
                latencies.append(time.perf_counter() - started)
        result[f"{method}_p95_ms_at_scale"] = ms(percentile(latencies, 95))
    return result


QUICK_SESSIONS = 3
"""Sessions per conversation in a ``--quick`` run."""
QUICK_LATENCY_MEMORIES = 2_000


def run_recall_bench(
    data: Path,
    *,
    workdir: Path,
    semantic: bool = True,
    latency_memories: int = LATENCY_MEMORIES,
    progress: Progress | None = None,
    folds: bool = False,
    quick: bool = False,
) -> dict[str, Any]:
    """Load ``data`` into a store in ``workdir`` and measure retrieval per method.

    Latency is measured again once copies of the memories bring the store to
    ``latency_memories`` (``keyword_p95_ms_at_scale``, and ``semantic_…`` and
    ``hybrid_…`` with embeddings). With ``folds``, the tuned ranking parameters are also
    chosen leave-one-conversation-out (``folds``). ``quick`` keeps each conversation's
    first :data:`QUICK_SESSIONS` sessions (and the questions about them) and measures
    latency at :data:`QUICK_LATENCY_MEMORIES` at most: seconds, for a smoke run.
    """
    conversations = load_conversations(data, QUICK_SESSIONS if quick else None)
    if quick:
        latency_memories = min(latency_memories, QUICK_LATENCY_MEMORIES)
    result: dict[str, Any] = {
        "benchmark": "recall",
        "quick": quick,
        "conversations": [c.name for c in conversations],
        "memories": sum(isinstance(e, MemoryAdded) for c in conversations for e in c.events),
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
            result["embedding_model"] = embeddings.model
        if folds:
            result["folds"] = _folds(store, conversations, embeddings)
        try:
            result.update(_latency_at(store, conversations, latency_memories, embeddings))
        finally:
            if embeddings is not None:
                embeddings.close()
        result["memories_at_latency"] = store.query("SELECT count(*) AS n FROM memories")[0].n
    return result
