"""Restoring an archive into an empty data directory, checking it first and after."""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import msgspec
from sqlalchemy import Table

from pjai.errors import (
    ArchiveCorruptError,
    ArchiveError,
    ConfigError,
    ErasedValueError,
    KeyRingError,
    RebaseError,
)
from pjai.hybrid.archive.footprint import check_import_room
from pjai.hybrid.archive.format import (
    BATCH,
    CHUNK,
    EVENTS_FILE,
    FORMAT,
    MANIFEST_FILE,
    MAX_MANIFEST_BYTES,
    TABLE_FILE,
    ArchiveFile,
    ArchiveManifest,
    FormatProbe,
    ImportResult,
    Tally,
    closing,
    decode_record,
    opened_line,
    table_lines,
)
from pjai.hybrid.archive.opening import opened_archive
from pjai.hybrid.files import FLAGS_FILE, STORE_FILE
from pjai.hybrid.flags import Flags
from pjai.hybrid.fresh import Made, importing, sql_inside, taken
from pjai.hybrid.manager import HybridDatabaseManager
from pjai.schema import SCHEMA
from pjai.schema.codec import ColumnCodec, History
from pjai.schema.event import Schema
from pjai.schema.personas import creations
from pjai.schema.records import ROOT, EventRecord, Following, header_problem
from pjai.schema.sealed import ENVELOPE_KEY, is_envelope
from pjai.schema.tables import persona_column
from pjai.security.keys import KEYS_FILE
from pjai.sql.engine import PRIMARY_FILE
from pjai.sql.shards import data_dir_urls
from pjai.store import Progress, Store

__all__ = ["import_archive"]

_BESIDE = ("", "-wal", "-shm", "-journal", ".rebuilt", ".rebuilding")
"""Files of a database that SQLite or a repair keeps beside it."""

_AGAIN = (
    f"remove {STORE_FILE} and {PRIMARY_FILE} there, and the files beside them "
    f"({STORE_FILE}-wal, {PRIMARY_FILE}-wal, ...), then import again"
)


def _is_subject_export(manifest: bytes) -> bool:
    """Whether ``manifest`` is the manifest of a data-subject export
    (:func:`pjai.app.subject.export_subject`), which names a persona and no format."""
    try:
        found = msgspec.json.decode(manifest)
    except msgspec.DecodeError:
        return False
    return isinstance(found, dict) and "format" not in found and "persona_id" in found


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
    archive's events become this instance's pending events (:meth:`Store.adopt`), which
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
        manifest = _checked_manifest(zf, archive)
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


BATCH_BYTES = 32 * 1024 * 1024
"""Events are ingested in batches of :data:`BATCH`, or fewer that hold this many bytes of
arguments: a batch of long events is not held whole (an event is at most a line)."""

MAX_LINE = 16 * 1024 * 1024
"""The longest line an archive member may hold: an event or row at its largest (2 MiB of
arguments, more once sealed and escaped) with room to spare."""

_ENCRYPTED = 0x1
"""The zip flag bit of an encrypted member."""
_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})

_SEALED = f'"{ENVELOPE_KEY}"'.encode()
"""How a sealed field shows in an event's arguments."""


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


@contextmanager
def _reading(archive: Path, member: str) -> Iterator[None]:
    """Translate what a damaged zip member raises into an error naming it."""
    try:
        yield
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise ArchiveCorruptError(f"{archive}: {member} is damaged ({exc})") from exc


def _checked_manifest(zf: zipfile.ZipFile, archive: Path) -> ArchiveManifest:
    """The manifest, once every file of the archive matches it."""
    listing = zf.namelist()
    names = set(listing)
    if len(names) != len(listing):
        # Readers differ on which copy they take: what one shows is not what is imported.
        twice = sorted(name for name, n in Counter(listing).items() if n > 1)
        raise ArchiveCorruptError(
            f"{archive}: {', '.join(twice)} appear(s) more than once; a PJai archive holds "
            "each file once, so it was changed"
        )
    if MANIFEST_FILE not in names:
        raise ArchiveCorruptError(f"{archive} is not a PJai archive: it has no {MANIFEST_FILE}")
    for info in zf.infolist():
        if info.flag_bits & _ENCRYPTED or info.compress_type not in _METHODS:
            raise ArchiveCorruptError(
                f"{archive}: {info.filename} is encrypted or compressed in a way PJai "
                "does not write (a PJai archive is plain deflate)"
            )
    with _reading(archive, MANIFEST_FILE), zf.open(MANIFEST_FILE) as member:
        raw = member.read(MAX_MANIFEST_BYTES)
    try:
        found = msgspec.json.decode(raw, type=FormatProbe).format
        if found != FORMAT:
            raise ArchiveError(
                f"{archive} has archive format {found}; this PJai reads format {FORMAT}. "
                "Import it with the PJai version that wrote it"
            )
        manifest = msgspec.json.decode(raw, type=ArchiveManifest)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        if _is_subject_export(raw):
            raise ArchiveError(
                f"{archive} is a persona's data for its data subject (`pjai privacy "
                "export`), to read, not an archive to import: `pjai export` makes one"
            ) from None
        raise ArchiveCorruptError(f"{archive}: {MANIFEST_FILE} is not valid: {exc}") from exc
    listed, names = set(manifest.files), names - {MANIFEST_FILE}
    problems = [f"{n} is not listed in the manifest" for n in sorted(names - listed)]
    problems += [f"{n} is listed but not there" for n in sorted(listed - names)]
    problems += [
        f"{n} is not an archive file name"
        for n in sorted(listed)
        if n != EVENTS_FILE and not TABLE_FILE.fullmatch(n)
    ]
    if EVENTS_FILE not in listed:
        problems.append(f"the manifest does not list {EVENTS_FILE}")
    if problems:
        raise ArchiveCorruptError(f"{archive}: {'; '.join(problems)}")
    for name in sorted(listed):
        _check_file(zf, archive, name, manifest.files[name])
    if manifest.events != manifest.files[EVENTS_FILE].lines:
        raise ArchiveCorruptError(
            f"{archive}: the manifest counts {manifest.events} events but {EVENTS_FILE} "
            f"has {manifest.files[EVENTS_FILE].lines} lines"
        )
    return manifest


def _check_file(zf: zipfile.ZipFile, archive: Path, name: str, expected: ArchiveFile) -> None:
    digest = hashlib.sha256()
    size = lines = 0
    with _reading(archive, name), zf.open(name) as member:
        # Never inflate more than the manifest announced.
        while size <= expected.size and (chunk := member.read(CHUNK)):
            digest.update(chunk)
            size += len(chunk)
            lines += chunk.count(b"\n")
    got = {"size": size, "sha256": digest.hexdigest(), "line count": lines}
    want = {"size": expected.size, "sha256": expected.sha256, "line count": expected.lines}
    for what in got:
        if got[what] != want[what]:
            raise ArchiveCorruptError(
                f"{archive}: {name} does not match the manifest ({what} {got[what]}, "
                f"manifest says {want[what]}); the archive is damaged or was changed"
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
    applied = _replay(manager, store, zf, archive, tally)
    if not store.sync and store.head.key != manifest.head.key:
        raise ArchiveCorruptError(
            f"{archive}: the manifest says the log ends at {manifest.head}, but its "
            f"events end at {store.head}; the archive was changed"
        )
    if same_schema:
        erased = _compare(store, zf, archive, manifest, tally)
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


def _replay(
    manager: HybridDatabaseManager, store: Store, zf: zipfile.ZipFile, archive: Path, tally: Tally
) -> int:
    """Feed the archive's events to the store in batches, SQL catching up after each."""
    plain = store.schema.codec.columns() is None
    schema = store.schema
    sensitive = {
        name: getattr(kind, "SENSITIVE", ())
        for name, kind in zip(schema.event_names, schema.event_types, strict=True)
    }
    # What a record follows, as a codec reads it to seal for the persona of an id given
    # again: the store is empty, so the archive's persona creations before it (the
    # events the codec looks for), as sealed here.
    creating, made = creations(schema.event_types), list[EventRecord]()
    history = Following(None, made)

    def seal(record: EventRecord) -> EventRecord:
        record = _sealed_here(record, schema, archive, history)
        if record.name in creating:
            made.append(record)
        return record

    def ingest(batch: list[EventRecord]) -> int:
        if not plain:
            batch = [seal(record) for record in batch]
        elif any(_sealed(record, sensitive) for record in batch):
            raise ConfigError(
                f"{archive} holds sealed events (exported from an encrypted data "
                f"directory): they open only with that directory's key ring; copy its "
                f"{KEYS_FILE} into {manager.data_dir}, give its passphrase, and import "
                "again into a new data directory"
            )
        # A synced store's history is its server's: the archive's events become this
        # instance's own, pending until the server confirms them (and SQL receives
        # them then).
        try:
            applied = store.adopt(batch) if store.sync else store.ingest(batch)
        except RebaseError as exc:  # an event id the archive repeats, say
            raise ArchiveCorruptError(
                f"{archive}: {EVENTS_FILE} is not one history: {exc}"
            ) from exc
        if not store.sync:
            manager.catch_up()
        tally.add(len(batch))
        return applied

    applied = size = 0
    batch: list[EventRecord] = []
    with _reading(archive, EVENTS_FILE), zf.open(EVENTS_FILE) as member:
        for number, line in _lines(member, archive, EVENTS_FILE):
            try:
                record = decode_record(line)
            except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
                raise ArchiveCorruptError(
                    f"{archive}: {EVENTS_FILE} line {number} is not an event record: {exc}"
                ) from exc
            if (problem := header_problem(record)) is not None:
                raise ArchiveCorruptError(f"{archive}: {EVENTS_FILE} line {number}: {problem}")
            batch.append(record)
            size += len(record.args)
            if len(batch) >= BATCH or size >= BATCH_BYTES:
                applied, batch, size = applied + ingest(batch), [], 0
    return applied + ingest(batch)


def _compare(
    store: Store, zf: zipfile.ZipFile, archive: Path, manifest: ArchiveManifest, tally: Tally
) -> int:
    """Raise naming the first row where the replayed state and the snapshot differ;
    returns how many snapshot rows were skipped as sealed under erased keys (their
    events, refused as erased, left no row)."""
    tables = store.schema.metadata.sorted_tables
    sealer = store.schema.codec.columns() if manifest.sealed_with else None
    odd = sorted({t.name for t in tables} ^ manifest.rows.keys())
    if odd:
        raise ArchiveCorruptError(
            f"{archive}: the snapshot's tables are not this schema's ({', '.join(odd)})"
        )
    erased = 0
    gone: set[str] = set()
    """Personas whose rows no longer open: every row of theirs, in any table, is skipped
    (the personas table comes first: the others refer to it)."""
    for table in tables:
        name = f"tables/{table.name}.jsonl"
        with (
            _reading(archive, name),
            zf.open(name) as snapshot,
            closing(table_lines(store, table)) as replayed,
        ):
            number = 0
            for number, line in _lines(snapshot, archive, name):
                try:
                    if gone and _owner(table, line) in gone:
                        theirs = None
                    else:
                        theirs = opened_line(line.rstrip(b"\n"), table, sealer)
                except ErasedValueError:
                    gone.add(_owner(table, line) or "")
                    theirs = None
                if theirs is None:  # a row of a persona erased since
                    erased += 1
                    tally.add()
                    continue
                mine = next(replayed, None)
                if mine is None:
                    problem = "is missing from the state replayed from the events"
                elif mine != theirs:
                    problem = "differs between the replayed state and the snapshot"
                else:
                    tally.add()
                    continue
                raise ArchiveCorruptError(
                    f"{archive}: {name} line {number}: row {_row_key(table, theirs)} {problem}"
                )
            extra = next(replayed, None)
            if extra is not None:
                raise ArchiveCorruptError(
                    f"{archive}: {name} line {number + 1}: row {_row_key(table, extra)} is in "
                    "the replayed state but not in the snapshot"
                )
    return erased


def _sealed_here(
    record: EventRecord, schema: Schema, archive: Path, history: History
) -> EventRecord:
    """``record`` with the sensitive fields it holds plain sealed, as this encrypted
    directory seals a new event's (an archive of a plain directory, or events written
    before encryption was on), after ``history``: no readable text goes where the rest
    is sealed."""
    stored = bytes(record.args)
    try:
        sealed = schema.codec.seal(record.id, record.name, stored, history)
    except (msgspec.DecodeError, RecursionError):
        return record  # refused as undecodable when applied
    except KeyRingError as exc:  # a persona erased here
        raise ConfigError(
            f"{archive}: event {record.id} ({record.name}) cannot be sealed here: {exc}"
        ) from exc
    return record if sealed == stored else msgspec.structs.replace(record, args=msgspec.Raw(sealed))


def _sealed(record: EventRecord, sensitive: Mapping[str, Sequence[str]]) -> bool:
    """Whether one of the record's sensitive fields holds an envelope (text that merely
    mentions the envelope's key is no envelope)."""
    fields = sensitive.get(record.name, ())
    if not fields or _SEALED not in bytes(record.args):
        return False
    try:
        args = msgspec.json.decode(record.args)
    except (msgspec.DecodeError, RecursionError):
        return False  # refused as undecodable when applied
    return isinstance(args, dict) and any(is_envelope(args.get(f)) for f in fields)


def _lines(member: IO[bytes], archive: Path, name: str) -> Iterator[tuple[int, bytes]]:
    """The numbered lines of an archive member, each whole (ending in a newline) and at
    most :data:`MAX_LINE` bytes: an archive's own sizes do not bound what it inflates."""
    number = 0
    while line := member.readline(MAX_LINE + 1):
        number += 1
        if not line.endswith(b"\n"):
            problem = "is longer than PJai writes" if len(line) > MAX_LINE else "has no newline"
            raise ArchiveCorruptError(f"{archive}: {name} line {number} {problem}")
        yield number, line


def _owner(table: Table, line: bytes) -> str | None:
    """The persona a snapshot line of ``table`` belongs to."""
    try:
        row = msgspec.json.decode(line, type=dict[str, Any])
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    value = row.get(persona_column(table.name))
    return value if isinstance(value, str) else None


def _row_key(table: Table, line: bytes) -> str:
    try:
        row = msgspec.json.decode(line, type=dict[str, Any])
    except (msgspec.DecodeError, msgspec.ValidationError):
        return "(unreadable)"
    return "/".join(repr(row.get(c.name)) for c in table.primary_key.columns)
