"""Writing an archive: the event log and a state snapshot, read in one consistent state."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import tempfile
import time
import zipfile
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import IO

import msgspec

import pjai
from pjai.errors import ConfigError, PrivacyError
from pjai.hybrid.archive.format import (
    CHUNK,
    EVENTS_FILE,
    FORMAT,
    MANIFEST_FILE,
    ArchiveFile,
    ArchiveManifest,
    Tally,
    closing,
    encode_record,
    table_lines,
)
from pjai.hybrid.manager import HybridDatabaseManager
from pjai.schema.personas import creations
from pjai.schema.records import LogEntry
from pjai.schema.types import utc_now
from pjai.store import Progress, Store

__all__ = ["ABANDONED_S", "export_archive"]


def export_archive(
    manager: HybridDatabaseManager,
    path: str | Path,
    *,
    progress: Progress | None = None,
    overwrite: bool = False,
) -> ArchiveManifest:
    """Write ``manager``'s event log and state snapshot to the archive ``path``; from an
    encrypted directory, the snapshot's sensitive columns are sealed as the events'
    fields are (the archive opens with that directory's key ring).

    The archive is read in one read transaction (:meth:`Store.snapshot`), so it holds
    one consistent state whatever other threads or processes commit meanwhile. The
    file appears only once complete; an existing file is replaced only with ``overwrite``.
    An archive holds every persona: :class:`~pjai.errors.PrivacyError` if one of them
    does not allow exports (``privacy.export_allowed`` off), and nothing is written.
    """
    store = manager.store
    if store is None:
        raise ConfigError(
            "export reads the reactive store, which is switched off; switch it on "
            "(pjai flags set use_livestore true) and export again"
        )
    target = Path(path)
    if target.is_symlink() or (target.exists() and not target.is_file()):
        # Replacing it would put a file where a device, a folder or a link was.
        raise ConfigError(f"{target} is not a regular file; give the path of a file to write")
    if target.exists() and not overwrite:
        raise ConfigError(f"{target} exists; pass --overwrite to replace it")
    _forget_abandoned(target)
    temporary: Path | None = None
    made = _first_missing(target.parent)
    published = False
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        temporary = Path(name)
        with os.fdopen(fd, "wb") as file:
            with store.snapshot():
                _check_exports_allowed(store)
                manifest = _write(file, store, progress)
            file.flush()
            os.fsync(file.fileno())
        _publish(temporary, target, overwrite=overwrite)
        published = True
    except OSError as exc:
        raise ConfigError(f"cannot write the archive {target}: {exc}") from exc
    finally:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        if not published and made is not None:
            _remove_empty(target.parent, made)
    return manifest


ABANDONED_S = 3600.0
"""A temporary archive not written to for this long was left by an export that was
killed on the way (a running export writes to it all along)."""


def _forget_abandoned(target: Path) -> None:
    """Remove the temporary files that exports to ``target`` killed on the way left."""
    for left in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        with contextlib.suppress(OSError):  # gone meanwhile, or not ours to remove
            if time.time() - left.stat().st_mtime > ABANDONED_S:
                left.unlink()


def _first_missing(folder: Path) -> Path | None:
    """The outermost folder of ``folder``'s path that does not exist yet, if any."""
    missing = None
    for place in (folder, *folder.parents):
        if place.exists():
            break
        missing = place
    return missing


def _remove_empty(folder: Path, up_to: Path) -> None:
    """Remove the folders an export made for an archive it did not write (``folder``
    and its parents up to ``up_to``), those still empty."""
    for place in (folder, *folder.parents):
        try:
            place.rmdir()
        except OSError:
            return  # not empty (or gone): what is in it is not the export's
        if place == up_to:
            return


def _check_exports_allowed(store: Store) -> None:
    refusing = store.query(
        "SELECT id, name FROM personas WHERE NOT privacy_export_allowed ORDER BY name, id"
    )
    if refusing:
        named = ", ".join(f"{r.name} ({r.id})" for r in refusing)
        verb = "does" if len(refusing) == 1 else "do"
        raise PrivacyError(
            f"an archive holds every persona, and {named} {verb} not allow exports "
            "(privacy.export_allowed is off); nothing was written. Turn it on with "
            "`pjai persona update PERSONA --set privacy.export_allowed=true` to export"
        )


def _write(file: IO[bytes], store: Store, progress: Progress | None) -> ArchiveManifest:
    summary = store.summary()
    events, rows = summary["events"], summary["rows"]
    assert isinstance(events, int)
    assert isinstance(rows, dict)
    tally = Tally(progress, events + sum(rows.values()))
    files: dict[str, ArchiveFile] = {}
    made: dict[str, bytes] = {}
    with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with closing(store.events()) as entries:
            records = _noting_creations(entries, creations(store.schema.event_types), made)
            files[EVENTS_FILE] = _write_member(zf, EVENTS_FILE, records, tally)
        sealer = store.schema.codec.columns()
        for table in store.schema.metadata.sorted_tables:
            member = f"tables/{table.name}.jsonl"
            with closing(table_lines(store, table, sealer, made)) as lines:
                files[member] = _write_member(zf, member, lines, tally)
        manifest = ArchiveManifest(
            format=FORMAT,
            pjai_version=pjai.__version__,
            schema_fingerprint=store.schema.fingerprint,
            schema_version=store.schema.version,
            store_id=store.store_id,
            client_id=store.client_id,
            created_at=utc_now(),
            head=store.head,
            events=files[EVENTS_FILE].lines,
            files=files,
            sealed_with=None if sealer is None else store.schema.codec.name,
        )
        zf.writestr(MANIFEST_FILE, msgspec.json.format(msgspec.json.encode(manifest)) + b"\n")
    return manifest


def _noting_creations(
    entries: Iterable[LogEntry], names: Collection[str], made: dict[str, bytes]
) -> Iterator[bytes]:
    """``entries`` encoded for the archive, noting in ``made`` the stored arguments of
    each persona's newest creation applied (events named one of ``names``): her
    snapshot rows are sealed with the lineage of its key, as her events are."""
    for entry in entries:
        record = entry.record
        if record.name in names and entry.error is None:
            args = msgspec.json.decode(bytes(record.args))
            if isinstance(args, dict) and isinstance(args.get("persona_id"), str):
                made[args["persona_id"]] = bytes(record.args)
        yield encode_record(record)


def _write_member(
    zf: zipfile.ZipFile, name: str, lines: Iterable[bytes], tally: Tally
) -> ArchiveFile:
    digest = hashlib.sha256()
    size = count = 0
    buffer = bytearray()
    # force_zip64: the size is unknown until the end and may pass 2 GiB.
    with zf.open(name, "w", force_zip64=True) as member:
        for line in lines:
            buffer += line + b"\n"
            count += 1
            tally.add()
            if len(buffer) >= CHUNK:
                digest.update(buffer)
                size += member.write(buffer)
                buffer.clear()
        digest.update(buffer)
        size += member.write(buffer)
    return ArchiveFile(sha256=digest.hexdigest(), size=size, lines=count)


def _publish(temporary: Path, target: Path, *, overwrite: bool) -> None:
    if not overwrite:
        try:  # unlike a rename, a link never replaces a file that appeared meanwhile
            os.link(temporary, target)
            return
        except FileExistsError:
            raise ConfigError(f"{target} exists; pass --overwrite to replace it") from None
        except OSError:  # a file system without hard links
            if target.exists():
                raise ConfigError(f"{target} exists; pass --overwrite to replace it") from None
    os.replace(temporary, target)
