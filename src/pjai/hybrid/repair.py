"""Repairing one side of the hybrid from the event log (``pjai repair``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pjai.errors import ConfigError
from pjai.hybrid.projector import Projector
from pjai.hybrid.recovery import RebuiltFrom, StoreRebuilt
from pjai.hybrid.switch import StoreSwitch
from pjai.schema.types import Progress

__all__ = ["Repaired", "Side", "repair"]

Side = Literal["sql", "store"]
"""A side of the hybrid: the SQL primary or the reactive store."""


@dataclass(frozen=True, slots=True)
class Repaired:
    """What a repair did.

    ``source``: what the side was rebuilt from (``log``: the store's event log;
    ``journal``: SQL's journal, the store's log being damaged). ``rebuilt`` says more
    when a damaged store file was replaced by a new one.
    """

    side: Side
    events: int
    source: RebuiltFrom
    rebuilt: StoreRebuilt | None = None


def repair(
    projector: Projector, switch: StoreSwitch, side: Side, progress: Progress | None
) -> Repaired:
    """Rebuild one side from the event log.

    ``sql``: empty every shard (rows, journal, checkpoints) and project the whole log
    again. ``store``: rebuild the store's state from its log; a store file that SQLite
    finds damaged is rebuilt in a new file instead, from its log if that reads whole,
    else from SQL's journal (:mod:`pjai.hybrid.recovery`). Events only one side has are
    first brought to the other. The caller holds the manager's lock.
    """
    if side not in ("sql", "store"):
        raise ConfigError(f"repair rebuilds 'sql' or 'store', not {side!r}")
    if side == "sql":
        return Repaired("sql", *projector.replace_sql(progress))
    store = projector.store
    if store is None:
        raise ConfigError("the store is switched off; switch it on to repair it")
    if problems := store.check():
        rebuilt = switch.replace_damaged(problems, progress)
        return Repaired("store", rebuilt.events, rebuilt.source, rebuilt)
    projector.reconcile(None)
    return Repaired("store", store.rebuild(progress), "log")
