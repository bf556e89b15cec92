"""Opening a data directory's files: the hybrid manager (:func:`open_manager`) and the
store on its own (:func:`open_store_file`). Each is refused while part of an import
that was stopped is there (:func:`_check_no_import_unfinished`), finishes first what an
erasure stopped before its end left owed, and tells a directory that cannot be made or
written as a :class:`~pjai.errors.ConfigError` naming it (:func:`usable`)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pjai.errors import (
    ConfigError,
    SqlError,
    SqlUnavailableError,
    StoreCorruptError,
    StoreModeError,
)
from pjai.files import read_json
from pjai.hybrid import HybridDatabaseManager
from pjai.hybrid.fresh import opening
from pjai.hybrid.recovery import finish_rebuild
from pjai.store import Progress, Store

if TYPE_CHECKING:
    from pjai.app.datadir import DataDir

__all__ = ["open_manager", "open_store_file", "usable"]

log = logging.getLogger(__name__)


def _finish_erasures(data_dir: DataDir, manager: HybridDatabaseManager) -> None:
    """:func:`pjai.app.privacy.finish_erasures`, imported when called: that module
    imports :mod:`pjai.app.datadir`, which imports this one."""
    from pjai.app.privacy import finish_erasures as finish

    finish(data_dir, manager)


def _destroy_erased_keys(data_dir: DataDir, store: Store) -> None:
    """:func:`pjai.app.erasedkeys.destroy_erased_keys`, imported when called, as above."""
    from pjai.app.erasedkeys import destroy_erased_keys as destroy

    destroy(data_dir, store)


def _take_erasures_before_proofs(manager: HybridDatabaseManager) -> None:
    """:func:`pjai.app.erasedkeys.take_erasures_before_proofs`, imported when called, as
    above. Only where the manager opens: the store's log and SQL's journal are both
    read (a store opened alone may lag an erasure the journal holds)."""
    from pjai.app.erasedkeys import applied_erasures, take_erasures_before_proofs

    take_erasures_before_proofs(manager.schema.codec, partial(applied_erasures, manager))


def open_manager(data_dir: DataDir, options: dict[str, Any]) -> HybridDatabaseManager:
    """The hybrid manager of ``data_dir``, opened with ``options`` as
    :meth:`pjai.app.DataDir.open` says."""
    with data_dir.writing():
        _check_no_import_unfinished(data_dir.path, data_dir.importing_path)
        before = {file.name for file in data_dir.existing()}
        try:
            manager = HybridDatabaseManager.open(data_dir.path, **options)
        except (StoreCorruptError, SqlError) as exc:
            # A file here is not PJai's (another program's store.db or primary.db) or
            # is damaged: take back the files opening made beside it, so that a
            # refused directory is left as it was. Not after SQL that is merely
            # unavailable (locked), nor where neither file was here before: another
            # process may be making a fresh directory's files at the same moment.
            held = {data_dir.store_path.name, data_dir.primary_path.name} & before
            if held and not isinstance(exc, SqlUnavailableError):
                data_dir.remove_new(before)
            raise
    try:
        _take_erasures_before_proofs(manager)
        _finish_erasures(data_dir, manager)
    except SqlError as exc:  # SQL away: the marks keep what is owed for the next open
        log.warning("finishing unfinished erasures waits for SQL: %s", exc)
    except BaseException:
        manager.close()
        raise
    return manager


def open_store_file(
    data_dir: DataDir, *, synced: bool, progress: Progress | None, options: dict[str, Any]
) -> Store:
    """The store file of ``data_dir`` on its own, synced or standalone as ``synced``
    says, opened with ``options`` as :meth:`pjai.app.DataDir.open_store` says."""
    with opening(data_dir.path):  # as in open_manager()
        _check_no_import_unfinished(data_dir.path, data_dir.importing_path)
        finish_rebuild(data_dir.store_path)  # a rebuild stopped half-way
        try:
            store = Store.open(data_dir.store_path, sync=synced, progress=progress, **options)
        except StoreModeError as exc:
            made = "a standalone" if synced else "a synced"
            does = "does not sync" if synced else "syncs (`pjai sync status` tells how)"
            raise StoreModeError(f"{data_dir.path} is {made} data directory: it {does}") from exc
        try:
            _destroy_erased_keys(data_dir, store)
        except BaseException:  # keys still held: the store must not open readable
            store.close()
            raise
        return store


def _check_no_import_unfinished(directory: Path, mark: Path) -> None:
    """Refuse ``directory`` if it holds part of an import (``mark`` exists): its process
    stopped before the import ended, and ran no clean-up
    (:func:`pjai.hybrid.fresh.importing`)."""
    if not mark.exists():
        return
    doing = "an import"
    try:
        what = read_json(mark)
        doing = str(what.get("doing", doing))
        told = f" of {what['source']} (started {what['started_at']})"
        again = str(what["again"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        told, again = "", f"run the {doing.split()[-1]} again"
    raise ConfigError(
        f"{directory} holds part of {doing}{told} that was stopped before it "
        f"finished: {again}; or, to use the directory as it is, delete {mark}"
    )


@contextmanager
def usable(directory: Path) -> Iterator[None]:
    """Turn a failure to make or write the data directory's files into a ConfigError."""
    if directory.is_dir() and not os.access(directory, os.W_OK):
        raise ConfigError(
            f"cannot use the data directory {directory}: it cannot be written (read-only "
            "or not yours), and PJai writes there even to read: its SQLite files keep "
            "write-ahead logs beside them"
        )
    try:
        yield
    except OSError as exc:
        where = exc.filename or directory
        raise ConfigError(
            f"cannot use the data directory {directory}: {exc.strerror or exc} ({where})"
        ) from exc
