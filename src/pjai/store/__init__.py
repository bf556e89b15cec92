"""The reactive, event-sourced local store: event log, SQLite state, live queries."""

from __future__ import annotations

from pjai.schema.records import ROOT, EventRecord, EventStatus, LogEntry, Position
from pjai.store.live import LiveQuery, Subscription
from pjai.store.query import Query, Row
from pjai.store.rebase import RebaseResult
from pjai.store.sqlite import Durability
from pjai.store.store import CommitHook, Progress, Store

__all__ = [
    "ROOT",
    "CommitHook",
    "Durability",
    "EventRecord",
    "EventStatus",
    "LiveQuery",
    "LogEntry",
    "Position",
    "Progress",
    "Query",
    "RebaseResult",
    "Row",
    "Store",
    "Subscription",
]
