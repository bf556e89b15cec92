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

With ``--folds`` the ranking parameters (:class:`pjai.memory.ranking.Tuning`: the
summary's weight, context expansion, the weight of dates in the question; for hybrid
also the keyword share) are chosen leave-one-conversation-out: for each conversation,
the best setting on the others is measured on it. Nothing is tuned on the conversation
it is reported on.

The conversations are read by :mod:`pjai.bench.locomo`, the answers scored by
:mod:`pjai.bench.recallscores`, the folds run by :mod:`pjai.bench.recallfolds`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pjai.bench.locomo import Conversation, load_conversations
from pjai.bench.locomo import Question as Question
from pjai.bench.recallfolds import DATE_WEIGHTS as DATE_WEIGHTS
from pjai.bench.recallfolds import KEYWORD_WEIGHTS as KEYWORD_WEIGHTS
from pjai.bench.recallfolds import NEIGHBOUR_WEIGHTS as NEIGHBOUR_WEIGHTS
from pjai.bench.recallfolds import SUMMARY_WEIGHTS as SUMMARY_WEIGHTS
from pjai.bench.recallfolds import Runs as Runs
from pjai.bench.recallfolds import measure_folds
from pjai.bench.recallscores import CATEGORIES as CATEGORIES
from pjai.bench.recallscores import Answer, measure_recall
from pjai.bench.stats import ms, percentile
from pjai.memory.embeddings import Embeddings, EmbeddingsUnavailable
from pjai.memory.search import Method, SearchFilter, search
from pjai.schema import Event, MemoryAdded
from pjai.schema.types import Progress
from pjai.store import Store

__all__ = ["Answer", "Conversation", "load_conversations", "run_recall_bench"]

LATENCY_MEMORIES = 10_000


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
        result["keyword"] = measure_recall(store, conversations, "keyword", None)
        embeddings = None
        if semantic:
            try:
                embeddings = Embeddings.open(workdir)
            except EmbeddingsUnavailable as exc:
                result["semantic_unavailable"] = str(exc)
        if embeddings is not None:
            embeddings.index(store)
            result["semantic"] = measure_recall(store, conversations, "semantic", embeddings)
            result["hybrid"] = measure_recall(store, conversations, "hybrid", embeddings)
            result["embeddings_engine"] = embeddings.engine
            result["embedding_model"] = embeddings.model
        if folds:
            result["folds"] = measure_folds(store, conversations, embeddings)
        try:
            result.update(_latency_at(store, conversations, latency_memories, embeddings))
        finally:
            if embeddings is not None:
                embeddings.close()
        result["memories_at_latency"] = store.query("SELECT count(*) AS n FROM memories")[0].n
    return result
