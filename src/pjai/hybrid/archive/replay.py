"""Replaying an archive's events into the new store, sealed as this directory seals."""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import msgspec

from pjai.errors import ArchiveCorruptError, ConfigError, KeyRingError, RebaseError
from pjai.hybrid.archive.format import BATCH, EVENTS_FILE, Tally, decode_record
from pjai.hybrid.archive.members import member_lines, reading
from pjai.hybrid.manager import HybridDatabaseManager
from pjai.schema.codec import History
from pjai.schema.event import Schema
from pjai.schema.personas import creations
from pjai.schema.records import EventRecord, Following, header_problem
from pjai.schema.sealed import ENVELOPE_KEY, is_envelope
from pjai.security import FieldCodec
from pjai.security.keys import KEYS_FILE
from pjai.store import Store

__all__ = ["BATCH_BYTES", "replay"]

BATCH_BYTES = 32 * 1024 * 1024
"""Events are ingested in batches of :data:`BATCH`, or fewer that hold this many bytes of
arguments: a batch of long events is not held whole (an event is at most a line)."""

_SEALED = f'"{ENVELOPE_KEY}"'.encode()
"""How a sealed field shows in an event's arguments."""


def replay(
    manager: HybridDatabaseManager,
    store: Store,
    zf: zipfile.ZipFile,
    archive: Path,
    tally: Tally,
    *,
    from_plain: bool,
) -> int:
    """Feed the archive's events to the store in batches, SQL catching up after each.
    ``from_plain``: the archive is of a directory that was not encrypted, whose
    erasures have no proof: this directory's key ring takes them as its own (they are
    the history imported, as its rows are), where it seals."""
    plain = store.schema.codec.columns() is None
    schema = store.schema
    ring = schema.codec.keys if from_plain and isinstance(schema.codec, FieldCodec) else None
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
        if ring is not None and (erasures := [r.id for r in batch if r.name in schema.proved]):
            ring.take_unproven(erasures)
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
    with reading(archive, EVENTS_FILE), zf.open(EVENTS_FILE) as member:
        for number, line in member_lines(member, archive, EVENTS_FILE):
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
