"""PJai's memory system: scoring, optimization, health, graph, search, timeline."""

from __future__ import annotations

from pjai.memory.analytics import Alert, Health, dashboard_query, health, health_query
from pjai.memory.backend import Backend
from pjai.memory.conversations import Ingested, RefusedMessage, ingest_conversation
from pjai.memory.embeddings import Embeddings, EmbeddingsUnavailable
from pjai.memory.graph import Neighbour, auto_link, components, decay_links, neighbours
from pjai.memory.optimizer import MemoryMove, OptimizationReport, optimize
from pjai.memory.scoring import MemoryFacts, score, tier_targets
from pjai.memory.search import SearchFilter, SearchHit, search
from pjai.memory.system import MemorySystem
from pjai.memory.timeline import Bucket, bookmark_memories, preset, timeline

__all__ = [
    "Alert",
    "Backend",
    "Bucket",
    "Embeddings",
    "EmbeddingsUnavailable",
    "Health",
    "Ingested",
    "MemoryFacts",
    "MemoryMove",
    "MemorySystem",
    "Neighbour",
    "OptimizationReport",
    "RefusedMessage",
    "SearchFilter",
    "SearchHit",
    "auto_link",
    "bookmark_memories",
    "components",
    "dashboard_query",
    "decay_links",
    "health",
    "health_query",
    "ingest_conversation",
    "neighbours",
    "optimize",
    "preset",
    "score",
    "search",
    "tier_targets",
    "timeline",
]
