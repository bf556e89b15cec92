"""Restoring an archive into an empty data directory, checking it first and after.

Its members are checked against the manifest (:mod:`pjai.hybrid.archive.members`), its
events replayed into the new store (:mod:`pjai.hybrid.archive.replay`), and the state
they rebuilt compared with its snapshot (:mod:`pjai.hybrid.archive.snapshot`).
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from pjai.errors import ArchiveCorruptError, ConfigError
from pjai.hybrid.archive.footprint import check_import_room
from pjai.hybrid.archive.format import ArchiveManifest, ImportResult, Tally
from pjai.hybrid.archive.members import MAX_LINE as MAX_LINE
from pjai.hybrid.archive.members import checked_manifest
from pjai.hybrid.archive.opening import opened_archive
from pjai.hybrid.archive.replay import BATCH_BYTES as BATCH_BYTES
from pjai.hybrid.archive.replay import replay
from pjai.hybrid.archive.snapshot import compare
from pjai.hybrid.files import FLAGS_FILE, STORE_FILE
from pjai.hybrid.flags import Flags
from pjai.hybrid.fresh import Made, importing, sql_inside, taken
from pjai.hybrid.manager import HybridDatabaseManager
from pjai.schema import SCHEMA
from pjai.schema.codec import ColumnCodec
from pjai.schema.event import Schema
from pjai.schema.records import ROOT
from pjai.security.keys import KEYS_FILE
from pjai.sql.engine import PRIMARY_FILE
from pjai.sql.shards import data_dir_urls
from pjai.store import Progress

__all__ = ["import_archive"]

_BESIDE = ("", "-wal", "-shm", "-journal", ".rebuilt", ".rebuilding")
"""Files of a database that SQLite or a repair keeps beside it."""

_AGAIN = (
    f"remove {STORE_FILE} and {PRIMARY_FILE} there, and the files beside them "
    f"({STORE_FILE}-wal, {PRIMARY_FILE}-wal, ...), then import again"
)


def import_archive(
    data_dir: str | Path,
    path: str | Path,
    *,
    sql_urls: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    sync: bool = False,
    schema: Schema = SCHEMA,
    sql_sealer: ColumnCodec | None = None,
) -> ImportResult:
    """Restore the archive ``path`` into the empty data directory ``data_dir``.

    An archive of an encrypted directory (sealed events and snapshot) is restored with
    a ``schema`` whose codec holds that directory's key ring: its ``keys.db`` copied
    into ``data_dir`` and unlocked (:meth:`pjai.app.DataDir.opening_options` gives the
    schema and the SQL primary's ``sql_sealer``).

    Another import or backup into ``data_dir``, or a command opening it, is refused at
    once while it runs (:func:`~pjai.hybrid.fresh.taken`). Every file of the archive is
    checked against the manifest before anything is written, and the disks it would be
    written to for room (:class:`~pjai.errors.NoRoomError`). The events are then
    replayed into a new store and the SQL primary, and the resulting state is compared
    with the archive's snapshot row by row.

    ``sync`` (or the ``sync`` flag set for the directory) makes it a synced one: the
    archive's events become this instance's pending events (:meth:`pjai.store.Store.adopt`), which
    the sync client pushes to the server it connects to; SQL receives them once the
    server confirms them. This is how a store moves to a new or reset sync server.
    """
    target, archive = Path(data_dir), Path(path)
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{target} is a file; import restores into a data directory")
    if archive.exists() and not archive.is_file():
        # A zip is read from its end: a device or a pipe would be read whole, and
        # /dev/zero never ends.
        raise ConfigError(f"{archive} is not a regular file; give the path of a PJai archive")
    # Held from before it is found empty until what a failure left is taken back.
    with opened_archive(archive) as zf, taken(target):
        _check_target(target, environ, schema)
        manifest = checked_manifest(zf, archive)
        _check_keys(manifest, schema, archive, target)
        urls = sql_urls if sql_urls is not None else data_dir_urls(target, environ)
        check_import_room(target, archive, manifest, urls)
        made = Made.before(target, only_if_empty=False, shards=urls)
        flags = target / FLAGS_FILE
        flags_before = flags.read_bytes() if flags.is_file() else None
        try:
            with importing(target, archive, again=_AGAIN):
                if sync:
                    Flags(flags, environ).set("sync", True)
                with HybridDatabaseManager.open(
                    target, sql_urls=sql_urls, environ=environ, schema=schema, sql_sealer=sql_sealer
                ) as manager:
                    head = manager.head()
                    try:
                        return _restore(manager, zf, archive, manifest, progress)
                    except BaseException as exc:
                        if manager.head() != head and not sql_inside(manager):
                            # The SQL primary keeps what reached it: so does the store.
                            made = None
                            exc.add_note(_kept(manager, manifest))
                        raise
        except BaseException as exc:
            if made is not None:
                problems = made.remove()
                if flags_before is not None and flags.read_bytes() != flags_before:
                    draft = flags.with_name(flags.name + ".tmp")
                    draft.write_bytes(flags_before)
                    draft.replace(flags)
                exc.add_note(f"{target} is left as it was before the import")
                for problem in problems:
                    exc.add_note(problem)
            raise


def _kept(manager: HybridDatabaseManager, manifest: ArchiveManifest) -> str:
    head = manager.store.head if manager.store is not None else ROOT
    return (
        f"{manager.data_dir} keeps what was imported (events up to {head} of "
        f"{manifest.events}), as does the SQL primary; nothing was deleted. To import "
        "again, use a new data directory and an empty SQL database."
    )


def _check_keys(manifest: ArchiveManifest, schema: Schema, archive: Path, target: Path) -> None:
    """Refuse, before writing anything, a sealed archive without its key ring."""
    if manifest.sealed_with is None or manifest.sealed_with == schema.codec.name:
        return
    raise ConfigError(
        f"{archive} is sealed ({manifest.sealed_with}) and opens only with the key ring of "
        f"the directory it came from: copy that directory's {KEYS_FILE} into {target}, "
        "give its passphrase (PJAI_PASSPHRASE) or key file (PJAI_KEY_FILE), and import "
        "again"
    )


def _check_target(data_dir: Path, environ: Mapping[str, str] | None, schema: Schema) -> None:
    # A journal left beside a database file would be replayed into the new one.
    found = [
        name + beside
        for name in (STORE_FILE, PRIMARY_FILE)
        for beside in _BESIDE
        if (data_dir / (name + beside)).exists()
    ]
    if (data_dir / KEYS_FILE).exists() and schema.codec.columns() is None:
        raise ConfigError(
            f"{data_dir} is encrypted (it has a key ring) but was not opened with it: "
            "give its passphrase (PJAI_PASSPHRASE) or key file (PJAI_KEY_FILE)"
        )
    if found:
        raise ConfigError(
            f"{data_dir} already holds PJai data ({', '.join(found)}); import restores "
            "into an empty data directory: choose a new one"
        )
    if not Flags(data_dir / FLAGS_FILE, environ)["use_livestore"]:
        raise ConfigError(
            "import replays the archive through the reactive store, which is switched "
            "off (PJAI_USE_LIVESTORE); switch it on and import again"
        )


def _restore(
    manager: HybridDatabaseManager,
    zf: zipfile.ZipFile,
    archive: Path,
    manifest: ArchiveManifest,
    progress: Progress | None,
) -> ImportResult:
    store = manager.store
    if store is None:
        raise ConfigError("import needs the reactive store switched on")
    if store.head != ROOT:
        sql = ", ".join(shard.url for shard in manager.shards)
        raise ConfigError(
            f"the SQL primary {sql} already holds events (up to {store.head}), now mirrored "
            f"into {manager.store_path}; import needs an empty SQL database"
        )
    schema = manager.schema
    same_schema = manifest.schema_fingerprint == schema.fingerprint
    tally = Tally(progress, manifest.events + (sum(manifest.rows.values()) if same_schema else 0))
    note = None
    applied = replay(manager, store, zf, archive, tally, from_plain=manifest.sealed_with is None)
    if not store.sync and store.head.key != manifest.head.key:
        raise ArchiveCorruptError(
            f"{archive}: the manifest says the log ends at {manifest.head}, but its "
            f"events end at {store.head}; the archive was changed"
        )
    if same_schema:
        erased = compare(store, zf, archive, manifest, tally)
        if erased:
            note = (
                f"{erased} rows of the snapshot belong to personas erased since the "
                "archive was written (their data keys are gone): they were not "
                "restored, and their events are kept sealed and refused"
            )
    else:
        note = (
            f"the snapshot was written with schema {manifest.schema_fingerprint} "
            f"(version {manifest.schema_version}), this PJai has {schema.fingerprint} "
            f"(version {schema.version}): the state was rebuilt from the events and "
            "not compared with the snapshot"
        )
    count = 'SELECT count(*) AS n FROM "{}"'
    rows = {name: store.query(count.format(name))[0].n for name in schema.tables()}
    return ImportResult(manifest, manifest.events, applied, rows, same_schema, note)
