"""A data directory: the one list of the files PJai keeps, and the way to open them.

Each file's name is defined once, by the module that owns the file; this module
gathers them so that an interface can say which exist (``pjai doctor``) and open what
it needs without naming a file.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pjai.app.login import PASSPHRASE_FILE, Passphrase
from pjai.errors import (
    ConfigError,
    KeyRingError,
    SqlError,
    SqlUnavailableError,
    StoreCorruptError,
    StoreModeError,
)
from pjai.files import read_json
from pjai.hybrid import HybridDatabaseManager
from pjai.hybrid.files import FLAGS_FILE, IDENTITY_FILE, IMPORTING_FILE, STORE_FILE
from pjai.hybrid.flags import Flags, parse_bool
from pjai.hybrid.fresh import opening
from pjai.hybrid.legacy import REPORT_FILE as LEGACY_REPORT_FILE
from pjai.hybrid.recovery import finish_rebuild
from pjai.memory import Embeddings, MemorySystem
from pjai.memory.embeddings import VECTORS_FILE
from pjai.memory.encoders import EmbeddingModel
from pjai.schema import SCHEMA
from pjai.schema.limits import encoding_problem
from pjai.security import KEYS_FILE, FieldCodec, KeyRing
from pjai.security.columns import ColumnSealer
from pjai.security.keys import store_fingerprint
from pjai.security.oskeyring import recall
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

log = logging.getLogger(__name__)

PASSPHRASE_ENV = "PJAI_PASSPHRASE"
"""The environment variable that holds an encrypted directory's passphrase."""

KEY_FILE_ENV = "PJAI_KEY_FILE"
"""The environment variable that names an encrypted directory's key file."""

SQL_SEALED_ENV = "PJAI_SQL_SEALED"
"""Whether the SQL primary keeps the sensitive columns sealed (:meth:`DataDir.sql_sealed`)."""

_SIDECARS = ("-wal", "-shm", "-journal")
"""What SQLite keeps beside a database file while it is open or after a crash."""

_BESIDE = ("", ".rebuilt", ".rebuilding")
"""What a repair keeps beside a file while it rebuilds it (:mod:`pjai.hybrid.recovery`)."""

SYNC_STATUS_FILE = "sync-status.json"
"""What ``pjai sync connect`` last saw, written after every change of its status."""

SYNC_LOCK_FILE = "sync.lock"
"""Locked by the process whose sync client runs here (one at a time)."""


def _server_file() -> str:
    # Imported when asked for: the server's package loads Starlette and uvicorn, which
    # an instance that only syncs never needs.
    from pjai.sync.server import SERVER_FILE

    return SERVER_FILE


def _finish_erasures(data_dir: DataDir, manager: HybridDatabaseManager) -> None:
    """:func:`pjai.app.privacy.finish_erasures`, imported when called: that module
    imports this one."""
    from pjai.app.privacy import finish_erasures as finish

    finish(data_dir, manager)


def _destroy_erased_keys(data_dir: DataDir, store: Store) -> None:
    """:func:`pjai.app.erasedkeys.destroy_erased_keys`, imported when called, as above."""
    from pjai.app.erasedkeys import destroy_erased_keys as destroy

    destroy(data_dir, store)


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
        environ = os.environ if self.environ is None else self.environ
        passphrase, key_file = environ.get(PASSPHRASE_ENV), environ.get(KEY_FILE_ENV)
        for name, value in ((PASSPHRASE_ENV, passphrase), (KEY_FILE_ENV, key_file)):
            if value is not None and (problem := encoding_problem(value)) is not None:
                raise KeyRingError(f"{name} {problem}; give it in UTF-8")
        if passphrase is None and key_file is None:
            if recall(store_fingerprint(self.keys_path)) is None:
                raise KeyRingError(
                    f"{self.path} is encrypted: give its passphrase in {PASSPHRASE_ENV} or "
                    f"its key file's path in {KEY_FILE_ENV} (or keep its key in the OS "
                    "keyring: `pjai security remember`)"
                )
            return KeyRing.unlock(self.keys_path, os_keyring=True)
        return KeyRing.unlock(self.keys_path, passphrase=passphrase, key_file=key_file)

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
        environ = os.environ if self.environ is None else self.environ
        raw = environ.get(SQL_SEALED_ENV, "auto").strip().lower()
        urls = data_dir_urls(self.path, self.environ)
        shared = all(url.startswith("postgresql") for url in urls)
        if raw == "auto":
            return self.encrypted and shared
        wanted = parse_bool(raw, SQL_SEALED_ENV)
        if wanted and not self.encrypted:
            raise ConfigError(
                f"{SQL_SEALED_ENV}=true needs an encrypted data directory (`pjai security "
                "init`): the columns are sealed with its keys"
            )
        if wanted and not shared:
            raise ConfigError(
                f"{SQL_SEALED_ENV}=true is for a PostgreSQL primary; an SQLite primary is a "
                "file on this device, plaintext like the store (set it to auto or false)"
            )
        return wanted

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
        target = path.resolve()
        kept = [(self.path / file.name).resolve() for file in self.files()]
        kept += [file.resolve() for s in shards or () if (file := sqlite_file(s.engine.url))]
        for file in kept:
            if target.parent != file.parent or not target.name.startswith(file.name):
                continue
            rest = target.name[len(file.name) :]
            for beside in _BESIDE:
                if rest.startswith(beside) and rest[len(beside) :] in ("", *_SIDECARS):
                    return True
            if rest.startswith(".damaged-"):
                return True
        return False

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
            path = self.path / file.name
            for part in (path, *(path.with_name(path.name + s) for s in _SIDECARS)):
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
        found: set[Path] = set()
        for file in (self.store_path, *self.sqlite_files()):
            for copy in file.parent.glob(f"{glob.escape(file.name)}.damaged-*"):
                if not copy.name.endswith(_SIDECARS) and copy.is_file():
                    found.add(copy)
        return sorted(found)

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
        with self.writing():
            self._check_no_import_unfinished()
            before = {file.name for file in self.existing()}
            try:
                manager = HybridDatabaseManager.open(self.path, **options)
            except (StoreCorruptError, SqlError) as exc:
                # A file here is not PJai's (another program's store.db or primary.db) or
                # is damaged: take back the files opening made beside it, so that a
                # refused directory is left as it was. Not after SQL that is merely
                # unavailable (locked), nor where neither file was here before: another
                # process may be making a fresh directory's files at the same moment.
                held = {self.store_path.name, self.primary_path.name} & before
                if held and not isinstance(exc, SqlUnavailableError):
                    self.remove_new(before)
                raise
        try:
            _finish_erasures(self, manager)
        except SqlError as exc:  # SQL away: the marks keep what is owed for the next open
            log.warning("finishing unfinished erasures waits for SQL: %s", exc)
        except BaseException:
            manager.close()
            raise
        return manager

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
        with self._files(), opening(self.path):
            yield

    def _check_no_import_unfinished(self) -> None:
        """Refuse a directory that holds part of an import: its process stopped before
        the import ended, and ran no clean-up (:func:`pjai.hybrid.fresh.importing`)."""
        mark = self.importing_path
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
            f"{self.path} holds part of {doing}{told} that was stopped before it "
            f"finished: {again}; or, to use the directory as it is, delete {mark}"
        )

    @contextmanager
    def _files(self) -> Iterator[None]:
        """Turn a failure to make or write the directory's files into a ConfigError."""
        if self.path.is_dir() and not os.access(self.path, os.W_OK):
            raise ConfigError(
                f"cannot use the data directory {self.path}: it cannot be written (read-only "
                "or not yours), and PJai writes there even to read: its SQLite files keep "
                "write-ahead logs beside them"
            )
        try:
            yield
        except OSError as exc:
            where = exc.filename or self.path
            raise ConfigError(
                f"cannot use the data directory {self.path}: {exc.strerror or exc} ({where})"
            ) from exc

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
        with self._files():
            synced = self.flags()["sync"] if sync is None else sync
            options: dict[str, Any] = {}
            self._schema(options)
            with opening(self.path):  # as in open()
                self._check_no_import_unfinished()
                finish_rebuild(self.store_path)  # a rebuild stopped half-way
                try:
                    store = Store.open(self.store_path, sync=synced, progress=progress, **options)
                except StoreModeError as exc:
                    made = "a standalone" if synced else "a synced"
                    does = "does not sync" if synced else "syncs (`pjai sync status` tells how)"
                    raise StoreModeError(
                        f"{self.path} is {made} data directory: it {does}"
                    ) from exc
                try:
                    _destroy_erased_keys(self, store)
                except BaseException:  # keys still held: the store must not open readable
                    store.close()
                    raise
                return store

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
