"""Keeping a data directory in shape: SQL migrations, shards, repair, what files exist."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import apsw

from pjai.app.datadir import DataDir, DataFile
from pjai.errors import ConfigError, QueryError
from pjai.files import fsync_path
from pjai.hybrid import HybridDatabaseManager, Repaired
from pjai.hybrid.files import IMPORTING_FILE
from pjai.hybrid.fresh import importing, taken
from pjai.hybrid.health import Health
from pjai.hybrid.recovery import SetAside, StoreRebuilt, set_aside_damaged, sql_beyond_store
from pjai.hybrid.repair import Side
from pjai.memory.encoders import chosen_model
from pjai.memory.vector_status import VectorStatus, vector_status
from pjai.schema import SCHEMA
from pjai.security import keyfile
from pjai.sql import migrate
from pjai.sql.rebalance import Rebalanced, rebalance
from pjai.sql.sqlite import page_problems
from pjai.store import Progress

__all__ = [
    "Checkup",
    "Migrations",
    "Repair",
    "backup",
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
    vectors: VectorStatus | str
    """How far the memory vectors are behind, or why semantic search cannot be used."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the health, with the existing files under ``files`` and the
        vectors under ``vectors`` (``{"unavailable": reason}`` when they cannot be)."""
        files = [{"name": f.name, "what": f.what, "bytes": f.bytes} for f in self.files]
        vectors = (
            {"unavailable": self.vectors}
            if isinstance(self.vectors, str)
            else self.vectors.to_dict()
        )
        return {**self.health.to_dict(), "files": files, "vectors": vectors}


@dataclass(frozen=True, slots=True)
class Repair:
    """What :func:`repair` did: a side rebuilt from the log, or a damaged store file
    replaced as the directory opened (``rebuilt``)."""

    side: Side
    done: Repaired | None
    rebuilt: StoreRebuilt | None
    set_aside: list[SetAside] = field(default_factory=list)
    """The SQL primary's damaged SQLite files, moved aside and made anew."""


def upgrade_sql(data_dir: DataDir) -> list[tuple[str, str]]:
    """Create or upgrade every SQL shard's tables; each shard's URL and migration. The
    embedded primary's directory must exist (a mistyped one is named, never made)."""
    if not data_dir.path.is_dir():
        data_dir.require(sql_only=True)
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
    """Health of the store, the SQL shards and the bridge, the files present, and how
    many memories wait for a vector."""
    with data_dir.open(**options) as manager:
        health = manager.health()
        vectors: VectorStatus | str
        try:
            model = chosen_model()
            vectors = model.missing() or vector_status(data_dir.vectors_path, manager, model.id)
        except (ConfigError, QueryError) as exc:  # QueryError: several shards, store off
            vectors = str(exc)
        except apsw.Error as exc:
            vectors = f"{data_dir.vectors_path.name} cannot be read: {exc}"
    return Checkup(health, data_dir.existing(), vectors)


def repair(
    data_dir: DataDir,
    side: Side,
    progress: Progress | None = None,
    *,
    opening: Progress | None = None,
) -> Repair:
    """Rebuild ``side`` from the event log (a store file too damaged to open is
    rebuilt as the directory opens; an SQLite file of the SQL primary whose pages are
    damaged is first set aside, and made anew). ``opening`` reports the catching up as
    it opens."""
    set_aside = _set_aside_damaged_sql(data_dir) if side == "sql" else []
    options: dict[str, Any] = {"rebuild_damaged_store": side == "store", "progress": opening}
    with data_dir.open(**options) as manager:
        if manager.rebuilt is not None:
            return Repair(side, None, manager.rebuilt)
        done = manager.repair(side, progress)
        return Repair(side, done, done.rebuilt, set_aside)


def _set_aside_damaged_sql(data_dir: DataDir) -> list[SetAside]:
    """Move the SQL primary's damaged SQLite files aside, so that the repair rebuilds
    them in new files from the store; refused while the store is off, or while SQL's
    journal may hold events the store lacks (they would be lost with the file). Stop
    PJai's other processes first: one holding the file open would go on writing to it."""
    files = [path for path in data_dir.sqlite_files() if path.exists()]
    damaged = {path: found for path in files if (found := page_problems(path))}
    if not damaged:
        return []
    path, problems = next(iter(damaged.items()))
    if not data_dir.flags()["use_livestore"]:
        raise ConfigError(
            f"{path} is damaged ({problems[0]}) and the store, which SQL is rebuilt "
            "from, is switched off (PJAI_USE_LIVESTORE): switch it on and repair again, "
            "or restore the file from a backup"
        )
    if (beyond := sql_beyond_store(data_dir.store_path, files)) is not None:
        raise ConfigError(
            f"{path} is damaged ({problems[0]}), and SQL's journal may hold events the "
            f"store lacks ({beyond}): a rebuild from the store would lose them, so the "
            "file is left as it is. Restore it from a backup"
        )
    return [set_aside_damaged(path, found) for path, found in damaged.items()]


def backup(data_dir: DataDir, destination: Path) -> list[DataFile]:
    """Copy the data directory, while it is in use, to the new directory ``destination``:
    the store, an embedded SQL primary and the key ring through SQLite's online backup
    (one consistent state each), the flags and the identity as files. Returns the files
    written. A PostgreSQL primary is backed up with PostgreSQL's own tools. The key ring
    stays locked in the copy: an encrypted backup opens with the same passphrase or key
    file, and holds what the directory holds (the state in plaintext, the log sealed).

    Until the copy is whole and on disk, ``destination`` is marked as holding part of
    a backup (:data:`~pjai.hybrid.files.IMPORTING_FILE`): a process stopped on the way
    leaves a directory that is refused as it opens, never one that passes for a backup.
    """
    target = DataDir(destination)
    if target.path.exists() and not target.path.is_dir():
        raise ConfigError(f"{target.path} is a file; a backup goes to a new directory")
    again = f"delete what is in {target.path} and back up again"
    # Held from before it is found empty until what a failure left is taken back.
    with taken(target.path, doing="a backup"):
        if any(target.path.iterdir()):
            raise ConfigError(f"{target.path} is not empty; a backup goes to a new directory")
        with (
            data_dir.open(create=False) as manager,
            importing(target.path, data_dir.path, again=again, doing="a backup"),
        ):
            try:
                _copy(data_dir, manager, target)
            except BaseException:
                target.remove_new(())  # the mark last, and the directory if left empty
                raise
    return target.existing()


def _copy(data_dir: DataDir, manager: HybridDatabaseManager, target: DataDir) -> None:
    if manager.store is not None:
        manager.store.backup(target.store_path)
    shards = manager.shards.shards
    if len(shards) == 1 and shards[0].engine.url.database == str(data_dir.primary_path):
        shards[0].writer.backup(target.primary_path)  # the embedded primary
    if data_dir.encrypted:
        keyfile.backup(data_dir.keys_path, target.keys_path)
    for source, copy in (
        (data_dir.flags_path, target.flags_path),
        (data_dir.identity_path, target.identity_path),
    ):
        if source.exists():
            shutil.copyfile(source, copy)
    # On the disk before the mark goes: the power gone next must not leave a copy
    # that is not marked and not whole.
    for file in target.existing():
        if file.name != IMPORTING_FILE:
            fsync_path(target.path / file.name)
    fsync_path(target.path)
