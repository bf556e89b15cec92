"""The answers a search gives to a conversation's questions, and what ``pjai bench
recall`` reports of them: recall@k and hit@k per turn, hit@1 and recall@10 per session,
overall and per category."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pjai.bench.locomo import Conversation, Question
from pjai.bench.stats import ms, percentile
from pjai.memory.embeddings import Embeddings
from pjai.memory.ranking import TUNING, Tuning
from pjai.memory.search import Method, SearchFilter, search
from pjai.store import Store

__all__ = ["CATEGORIES", "Answer"]

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}


@dataclass(frozen=True, slots=True)
class Answer:
    """What the search for one question returned: dialogue ids, best first."""

    question: Question
    found: list[str]
    seconds: float


def _session(dia_id: str) -> str:
    """The session of a dialogue id: ``D3:5`` is turn 5 of session 3."""
    return dia_id.partition(":")[0]


def search_answers(
    store: Store,
    conversation: Conversation,
    method: Method,
    embeddings: Embeddings | None,
    tuning: Tuning = TUNING,
) -> list[Answer]:
    """The search's answer (``method``, with ``tuning``) to each of ``conversation``'s
    questions, timed."""
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
        answers.append(Answer(question, [dialogue_id(hit.memory_id) for hit in hits], seconds))
    return answers


def dialogue_id(memory_id: str) -> str:
    """The dialogue id (``D3:5``) of a benchmark memory's id (``PERSONA:D3:5``)."""
    return memory_id.split(":", 1)[1]


def rounded_mean(values: Iterable[float]) -> float:
    """The mean of ``values`` to four places; 0.0 when there are none."""
    values = list(values)
    return round(sum(values) / len(values), 4) if values else 0.0


def recall_figures(answers: list[Answer], *, latency: bool = True) -> dict[str, Any]:
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
        **{key: rounded_mean(values) for key, values in sorted(totals.items())},
        "by_category": {
            category: {
                "questions": len(figures["hit@5"]),
                **{k: rounded_mean(v) for k, v in sorted(figures.items())},
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


def measure_recall(
    store: Store,
    conversations: list[Conversation],
    method: Method,
    embeddings: Embeddings | None,
) -> dict[str, Any]:
    """The :func:`recall_figures` of ``method``'s answers to every conversation's
    questions."""
    answers = [a for c in conversations for a in search_answers(store, c, method, embeddings)]
    return recall_figures(answers)
