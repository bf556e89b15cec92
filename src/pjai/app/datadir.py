"""A data directory: the one list of the files PJai keeps, and the way to open them.

Each file's name is defined once, by the module that owns the file; this module
gathers them so that an interface can say which exist (``pjai doctor``) and open what
it needs without naming a file. How they are opened is :mod:`pjai.app.opening`; an
encrypted directory's keys, :mod:`pjai.app.sealing`; what lives beside a file PJai
keeps (journals, a repair's copies), :mod:`pjai.app.sidecars`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pjai.app import sidecars
from pjai.app.login import PASSPHRASE_FILE, Passphrase
from pjai.app.opening import open_manager, open_store_file, usable
from pjai.app.sealing import (
    KEY_FILE_ENV,
    PASSPHRASE_ENV,
    SQL_SEALED_ENV,
    sql_sealed,
    unlock_key_ring,
)
from pjai.errors import ConfigError
from pjai.hybrid import HybridDatabaseManager
from pjai.hybrid.files import FLAGS_FILE, IDENTITY_FILE, IMPORTING_FILE, STORE_FILE
from pjai.hybrid.flags import Flags
from pjai.hybrid.fresh import opening
from pjai.hybrid.legacy import REPORT_FILE as LEGACY_REPORT_FILE
from pjai.memory import Embeddings, MemorySystem
from pjai.memory.embeddings import VECTORS_FILE
from pjai.memory.encoders import EmbeddingModel
from pjai.schema import SCHEMA
from pjai.security import KEYS_FILE, FieldCodec, KeyRing
from pjai.security.columns import ColumnSealer
from pjai.sql.engine import PRIMARY_FILE, PoolConfig, sqlite_file
from pjai.sql.shards import ShardSet, data_dir_urls, shard_urls
from pjai.store import Progress, Store

__all__ = [
    "KEY_FILE_ENV",
    "PASSPHRASE_ENV",
    "SQL_SEALED_ENV",
    "SYNC_LOCK_FILE",
    "SYNC_STATUS_FILE",
    "DataDir",
    "DataFile",
]

SYNC_STATUS_FILE = "sync-status.json"
"""What ``pjai sync connect`` last saw, written after every change of its status."""

SYNC_LOCK_FILE = "sync.lock"
"""Locked by the process whose sync client runs here (one at a time)."""


def _server_file() -> str:
    # Imported when asked for: the server's package loads Starlette and uvicorn, which
    # an instance that only syncs never needs.
    from pjai.sync.server import SERVER_FILE

    return SERVER_FILE


def _web_sessions_file() -> str:
    from pjai.app.websessions import WEB_SESSIONS_FILE  # it loads the server's token code

    return WEB_SESSIONS_FILE


@dataclass(frozen=True, slots=True)
class DataFile:
    """One file of a data directory: its name, what it holds, its size if it exists."""

    name: str
    what: str
    bytes: int | None
    """Its size, or ``None`` when the file does not exist."""

    @property
    def exists(self) -> bool:
        """Whether the file is there."""
        return self.bytes is not None


class DataDir:
    """The directory holding one PJai installation's files.

    ``environ`` stands in for the process environment (flags, SQL shard URLs), as in
    :class:`~pjai.hybrid.HybridDatabaseManager`.
    """

    def __init__(self, path: Path | str, environ: Mapping[str, str] | None = None) -> None:
        self.path = Path(path)
        self.environ = environ
        self._ring: KeyRing | None = None

    def __repr__(self) -> str:
        return f"DataDir({str(self.path)!r})"

    # -- the files ------------------------------------------------------------------

    @property
    def store_path(self) -> Path:
        """The reactive store: event log and materialized state."""
        return self.path / STORE_FILE

    @property
    def flags_path(self) -> Path:
        """The feature flags set with ``pjai flags set``."""
        return self.path / FLAGS_FILE

    @property
    def identity_path(self) -> Path:
        """This installation's client id."""
        return self.path / IDENTITY_FILE

    @property
    def primary_path(self) -> Path:
        """The SQL primary when it is the embedded SQLite one (no ``PJAI_SQL_SHARDS``)."""
        return self.path / PRIMARY_FILE

    @property
    def vectors_path(self) -> Path:
        """Memory vectors for semantic search."""
        return self.path / VECTORS_FILE

    @property
    def sync_status_path(self) -> Path:
        """What ``pjai sync connect`` last saw."""
        return self.path / SYNC_STATUS_FILE

    @property
    def sync_lock_path(self) -> Path:
        """Locked while a sync client runs here."""
        return self.path / SYNC_LOCK_FILE

    @property
    def sync_server_path(self) -> Path:
        """The sync server's log and tokens when it keeps them in this directory."""
        return self.path / _server_file()

    @property
    def passphrase_path(self) -> Path:
        """The web app's passphrase (its hash), asked for off loopback."""
        return self.path / PASSPHRASE_FILE

    @property
    def web_sessions_path(self) -> Path:
        """The web app's sessions and access tokens (their digests)."""
        return self.path / _web_sessions_file()

    @property
    def legacy_report_path(self) -> Path:
        """What the last ``pjai import-legacy`` did not import, unless told another path."""
        return self.path / LEGACY_REPORT_FILE

    @property
    def importing_path(self) -> Path:
        """Written when an import into this directory starts, removed when it ends (well
        or with an error): left only by a process stopped on the way."""
        return self.path / IMPORTING_FILE

    def passphrase(self) -> Passphrase:
        """The web app's passphrase file."""
        return Passphrase(self.passphrase_path)

    @property
    def keys_path(self) -> Path:
        """The key ring: the store key (locked) and the personas' data keys."""
        return self.path / KEYS_FILE

    @property
    def encrypted(self) -> bool:
        """Whether the sensitive fields of this directory's events are encrypted (it has
        a key ring: ``pjai security init``)."""
        return self.keys_path.exists()

    def key_ring(self) -> KeyRing:
        """The directory's key ring, unlocked with the passphrase in ``PJAI_PASSPHRASE``
        or the key file named by ``PJAI_KEY_FILE``, else with its store key kept in the
        OS keyring (``pjai security remember``); :class:`~pjai.errors.KeyRingError` says
        what is missing or wrong."""
        return unlock_key_ring(self.path, self.keys_path, self.environ)

    def _schema(self, options: dict[str, Any], *, sql: bool = False) -> None:
        """Set the schema option to seal with the key ring, if there is one, and with
        ``sql`` the SQL primary's column sealer when it keeps the sensitive columns
        sealed (:meth:`sql_sealed`). The ring is unlocked once (stretching a passphrase
        takes a quarter of a second) and shared by everything this object opens."""
        sealed = self.sql_sealed()  # refuses a sealing asked for without a key ring
        need_schema = "schema" not in options
        need_sealer = sql and sealed and "sql_sealer" not in options
        if not self.encrypted or not (need_schema or need_sealer):
            return
        if self._ring is None:
            self._ring = self.key_ring()
        if need_schema:
            options["schema"] = SCHEMA.with_codec(FieldCodec(self._ring))
        if need_sealer:  # also under a schema the caller gave: SQL is never left plain
            options["sql_sealer"] = ColumnSealer(self._ring)

    def opening_options(self) -> dict[str, Any]:
        """What opening this directory's manager takes beside its path: for an
        encrypted directory, the schema sealing with its key ring and, when the SQL
        primary keeps the sensitive columns sealed, its sealer (``schema``,
        ``sql_sealer``)."""
        options: dict[str, Any] = {}
        self._schema(options, sql=True)
        return options

    def sql_sealed(self) -> bool:
        """Whether the SQL primary keeps the sensitive columns sealed: ``PJAI_SQL_SEALED``
        says (``true``, ``false``, or ``auto``, the default: sealed when this directory
        is encrypted and every shard is a PostgreSQL database, a shared one; plaintext
        on SQLite, a file on this device). Sealing needs a key ring and PostgreSQL."""
        return sql_sealed(self.path, self.environ, encrypted=self.encrypted)

    def files(self) -> list[DataFile]:
        """Every file PJai keeps here, whether or not it exists."""
        described = [
            (self.store_path, "reactive store: event log and state"),
            (self.flags_path, "feature flags"),
            (self.identity_path, "this installation's client id"),
            (self.primary_path, "SQL primary (embedded SQLite)"),
            (self.vectors_path, "memory vectors for semantic search"),
            (self.sync_status_path, "what `pjai sync connect` last saw"),
            (self.sync_lock_path, "locked by the process that syncs this directory"),
            (self.sync_server_path, "sync server log and access tokens"),
            (self.passphrase_path, "web app passphrase (its hash)"),
            (self.web_sessions_path, "web app sessions and access tokens (digests)"),
            (self.keys_path, "key ring: the locked store key and the personas' data keys"),
            (self.legacy_report_path, "rows the last desktop import did not take"),
            (self.importing_path, "an import or backup into this directory that has not finished"),
        ]
        return [DataFile(path.name, what, _size(path)) for path, what in described]

    def owns(self, path: Path, shards: ShardSet | None = None) -> bool:
        """Whether ``path`` is one of the files PJai keeps here (or, given ``shards``, an
        SQLite shard elsewhere), a repair's file beside one (``.rebuilt``, ``.rebuilding``,
        ``.damaged-<time>``) or an SQLite journal of either (``-wal``, ``-shm``,
        ``-journal``): a path no command may write something else to."""
        kept = [(self.path / file.name).resolve() for file in self.files()]
        kept += [file.resolve() for s in shards or () if (file := sqlite_file(s.engine.url))]
        return sidecars.beside_kept(path.resolve(), kept)

    def refuse_kept(self, path: Path, shards: ShardSet | None = None) -> None:
        """Raise :class:`~pjai.errors.ConfigError` if :meth:`owns` ``path``: an export
        written there would replace what PJai keeps (the key ring, a database)."""
        if self.owns(path, shards):
            raise ConfigError(
                f"{path} is a file PJai keeps for {self.path}; writing there would replace "
                "it: give a path outside the data directory's files"
            )

    def existing(self) -> list[DataFile]:
        """The files PJai keeps that exist here."""
        return [file for file in self.files() if file.exists]

    @property
    def exists(self) -> bool:
        """Whether this is a PJai data directory: a directory holding a file PJai keeps."""
        return self.path.is_dir() and bool(self.existing())

    def require(self, *, sql_only: bool = False) -> None:
        """Raise :class:`~pjai.errors.ConfigError` naming the path unless :attr:`exists`:
        a command that reads data never makes a directory where a mistyped one was meant.

        ``sql_only``: the caller needs only the SQL primary, so a directory is needed
        only when the primary is the embedded file (no ``PJAI_SQL_SHARDS``).
        """
        if self.exists or (sql_only and shard_urls(self.environ)):
            return
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"{self.path} is a file, not a PJai data directory")
        raise ConfigError(
            f"no PJai data directory at {self.path}; `pjai persona create` or `pjai demo` makes one"
        )

    def remove_new(self, kept: Iterable[str]) -> None:
        """Remove the files PJai keeps here except those named in ``kept`` (with their
        SQLite journals), and the directory itself if that leaves it empty: undoing what
        a command that failed made in a directory that was new to it."""
        keep = set(kept)
        for file in self.files():
            if file.name in keep:
                continue
            for part in sidecars.with_journals(self.path / file.name):
                part.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # not empty: something else lives here
            self.path.rmdir()

    # -- opening them ---------------------------------------------------------------

    def sqlite_files(self) -> list[Path]:
        """The SQL primary's SQLite files: the embedded one, or those of the shards
        ``PJAI_SQL_SHARDS`` lists (none when they are PostgreSQL)."""
        urls = data_dir_urls(self.path, self.environ)
        return [file for url in urls if (file := sqlite_file(url)) is not None]

    def damaged_copies(self) -> list[Path]:
        """The damaged files a repair set aside (``.damaged-<time>``) beside the store
        file and the SQL primary's SQLite files, without their journals: copies of the
        data as it was when they were set aside, which PJai keeps for a closer look and
        never writes to again."""
        return sidecars.damaged_copies([self.store_path, *self.sqlite_files()])

    def flags(self) -> Flags:
        """The directory's feature flags."""
        return Flags(self.flags_path, self.environ)

    def open(self, *, create: bool = True, **options: Any) -> HybridDatabaseManager:
        """The hybrid manager of this directory (``options`` as the manager takes them).

        Without ``create``, a directory that is not a PJai one is refused (:meth:`require`)
        rather than made. A directory that cannot be made or written is a
        :class:`~pjai.errors.ConfigError` naming it. An erasure stopped before it
        destroyed the persona's keys or rewrote the files is finished first
        (:func:`~pjai.app.privacy.finish_erasures`).
        """
        if not create:
            self.require()
        if self.environ is not None:
            options.setdefault("environ", self.environ)
        self._schema(options, sql=True)
        return open_manager(self, options)

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Held while a command makes or writes files here: :meth:`open` and the
        commands that write a file without opening the manager (the flags, the key ring;
        the web app's passphrase and sessions hold :func:`~pjai.hybrid.fresh.opening`
        themselves). Refused at once, with a
        :class:`~pjai.errors.ConfigError`, while an import or a backup goes into the
        directory (:func:`~pjai.hybrid.fresh.opening`): it found the directory empty,
        and would take what the command writes for its own, and remove it if it failed.
        A directory that cannot be made or written is a ConfigError naming it."""
        with usable(self.path), opening(self.path):
            yield

    @contextmanager
    def memory(self, **options: Any) -> Iterator[MemorySystem]:
        """The memory system over this directory's manager, closed afterwards."""
        with self.open(**options) as manager:
            yield MemorySystem(manager)

    def open_store(
        self, *, sync: bool | None = None, progress: Progress | None = None, create: bool = True
    ) -> Store:
        """The reactive store file on its own (made if missing, unless not ``create``),
        without SQL; synced or standalone as the directory is (its ``sync`` flag) unless
        ``sync`` says which is wanted. Of an unfinished erasure, the persona's keys are
        destroyed (:func:`~pjai.app.privacy.destroy_erased_keys`), so that a rebuild
        does not open its events; the rewrite of the files is left to :meth:`open`,
        which rewrites the SQL primary too."""
        if not create:
            self.require()
        with usable(self.path):
            synced = self.flags()["sync"] if sync is None else sync
            options: dict[str, Any] = {}
            self._schema(options)
            return open_store_file(self, synced=synced, progress=progress, options=options)

    def embeddings(self, model: EmbeddingModel | None = None) -> Embeddings:
        """The memory vectors of ``model`` (the chosen one by default), or
        :class:`~pjai.memory.EmbeddingsUnavailable`."""
        return Embeddings.open(self.path, model=model)

    def shards(self) -> ShardSet:
        """The SQL primary's shards (``PJAI_SQL_SHARDS``, else the embedded file)."""
        urls = data_dir_urls(self.path, self.environ)
        return ShardSet(urls, SCHEMA, PoolConfig.from_env(self.environ))

    @contextmanager
    def scratch(self, prefix: str, *, keep: bool = False) -> Iterator[Path]:
        """A new directory ``<prefix>*`` inside this one, removed afterwards unless ``keep``."""
        self.path.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix=prefix, dir=self.path))
        try:
            yield workdir
        finally:
            if not keep:
                shutil.rmtree(workdir, ignore_errors=True)


def _size(path: Path) -> int | None:
    try:
        return os.stat(path).st_size
    except (FileNotFoundError, NotADirectoryError):
        return None
