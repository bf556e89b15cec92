"""Keeping a data directory in shape: SQL migrations, shards, repair, what files exist."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pjai.app.datadir import DataDir, DataFile
from pjai.hybrid import Repaired
from pjai.hybrid.health import Health
from pjai.hybrid.manager import Side
from pjai.hybrid.recovery import StoreRebuilt
from pjai.schema import SCHEMA
from pjai.sql import migrate
from pjai.sql.rebalance import Rebalanced, rebalance
from pjai.store import Progress

__all__ = [
    "Checkup",
    "Migrations",
    "Repair",
    "checkup",
    "migrations",
    "rebalance_shards",
    "repair",
    "upgrade_sql",
]


@dataclass(frozen=True, slots=True)
class Migrations:
    """Each SQL shard's migration (``None``: empty) and the newest this PJai knows."""

    shards: list[tuple[str, str | None]]
    newest: str


@dataclass(frozen=True, slots=True)
class Checkup:
    """The health of both sides and the files the data directory holds."""

    health: Health
    files: list[DataFile]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the health, with the existing files under ``files``."""
        files = [{"name": f.name, "what": f.what, "bytes": f.bytes} for f in self.files]
        return {**self.health.to_dict(), "files": files}


@dataclass(frozen=True, slots=True)
class Repair:
    """What :func:`repair` did: a side rebuilt from the log, or a damaged store file
    replaced as the directory opened (``rebuilt``)."""

    side: Side
    done: Repaired | None
    rebuilt: StoreRebuilt | None


def upgrade_sql(data_dir: DataDir) -> list[tuple[str, str]]:
    """Create or upgrade every SQL shard's tables; each shard's URL and migration."""
    shards = data_dir.shards()
    try:
        return [(shard.url, migrate.upgrade(shard.engine)) for shard in shards]
    finally:
        shards.dispose()


def migrations(data_dir: DataDir) -> Migrations:
    """Each SQL shard's migration and the newest one."""
    shards = data_dir.shards()
    try:
        return Migrations([(s.url, migrate.current(s.engine)) for s in shards], migrate.head())
    finally:
        shards.dispose()


def rebalance_shards(data_dir: DataDir, progress: Progress | None = None) -> Rebalanced:
    """Move personas to the shard the hash ring now gives them (after adding a shard)."""
    shards = data_dir.shards()
    try:
        for shard in shards:
            migrate.upgrade(shard.engine)
        return rebalance(shards, SCHEMA, progress)
    finally:
        shards.dispose()


def checkup(data_dir: DataDir, **options: Any) -> Checkup:
    """Health of the store, the SQL shards and the bridge, and the files present."""
    with data_dir.open(**options) as manager:
        health = manager.health()
    return Checkup(health, data_dir.existing())


def repair(
    data_dir: DataDir,
    side: Side,
    progress: Progress | None = None,
    *,
    opening: Progress | None = None,
) -> Repair:
    """Rebuild ``side`` from the event log (a store file too damaged to open is
    rebuilt as the directory opens). ``opening`` reports the catching up as it opens."""
    options: dict[str, Any] = {"rebuild_damaged_store": side == "store", "progress": opening}
    with data_dir.open(**options) as manager:
        if manager.rebuilt is not None:
            return Repair(side, None, manager.rebuilt)
        done = manager.repair(side, progress)
        return Repair(side, done, done.rebuilt)
