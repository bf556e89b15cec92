"""``pjai bench recall --folds``: the ranking parameters chosen leave-one-conversation-out,
so that nothing is tuned on the conversation it is reported on."""

from __future__ import annotations

from collections import defaultdict
from itertools import product
from typing import Any

from pjai.bench.locomo import Conversation
from pjai.bench.recallscores import (
    Answer,
    dialogue_id,
    recall_figures,
    rounded_mean,
    search_answers,
)
from pjai.errors import ConfigError
from pjai.memory.embeddings import Embeddings
from pjai.memory.ranking import TUNING, Tuning, fuse, rerank
from pjai.memory.search import HYBRID_DEPTH, SearchFilter, search
from pjai.memory.when import time_window
from pjai.store import Store

__all__ = [
    "DATE_WEIGHTS",
    "KEYWORD_WEIGHTS",
    "NEIGHBOUR_WEIGHTS",
    "SUMMARY_WEIGHTS",
    "Runs",
]

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
                        Answer(q, [dialogue_id(h.memory_id) for h in top], 0.0)
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
            return float(recall_figures(answers, latency=False)["recall@10"])

        chosen = max(runs, key=lambda t: (trained(t), -distance(t)))
        scored = recall_figures(runs[chosen][held.name], latency=False)
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
        "mean": {n: rounded_mean(f[n] for f in folds) for n in _FOLD_FIGURES},
        "min": {n: min(f[n] for f in folds) for n in _FOLD_FIGURES},
        "max": {n: max(f[n] for f in folds) for n in _FOLD_FIGURES},
        "pooled": recall_figures(held_answers, latency=False),
    }


def measure_folds(
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
        t: {c.name: search_answers(store, c, "keyword", None, t) for c in conversations}
        for t in tunings
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
