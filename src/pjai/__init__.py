"""PJai: AI personas and their long-term, tiered memory on a reactive, event-sourced store."""

from __future__ import annotations

from pjai import errors
from pjai.schema import SCHEMA, Event, Schema
from pjai.store import EventRecord, LiveQuery, Position, Store

__all__ = [
    "SCHEMA",
    "Event",
    "EventRecord",
    "LiveQuery",
    "Position",
    "Schema",
    "Store",
    "errors",
]

__version__ = "0.1.0"
