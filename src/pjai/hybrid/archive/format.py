"""The archive format: file names, the manifest, canonical rows, progress counting."""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import msgspec
from sqlalchemy import Table

from pjai.schema.codec import ColumnCodec
from pjai.schema.fields import UtcDatetime
from pjai.schema.records import EventRecord, Position
from pjai.schema.tables import persona_column
from pjai.schema.types import to_iso
from pjai.store import Progress, Store

__all__ = [
    "BATCH",
    "CHUNK",
    "EVENTS_FILE",
    "FORMAT",
    "MANIFEST_FILE",
    "MAX_MANIFEST_BYTES",
    "TABLE_FILE",
    "ArchiveFile",
    "ArchiveManifest",
    "FormatProbe",
    "ImportResult",
    "Tally",
    "closing",
    "decode_record",
    "encode_record",
    "table_lines",
]

FORMAT = 1
"""The archive format this PJai writes and reads."""

MANIFEST_FILE = "manifest.json"
EVENTS_FILE = "events.jsonl"
BATCH = 1_000
CHUNK = 1 << 20
MAX_MANIFEST_BYTES = 16 << 20

TABLE_FILE = re.compile(r"tables/(?P<table>[A-Za-z_][A-Za-z0-9_]*)\.jsonl")
encode_row = msgspec.json.Encoder(order="sorted").encode
encode_record = msgspec.json.Encoder().encode
decode_record = msgspec.json.Decoder(EventRecord).decode

T = TypeVar("T")


class ArchiveFile(msgspec.Struct, frozen=True, kw_only=True):
    """One file of an archive as the manifest records it."""

    sha256: str
    size: int
    lines: int


class ArchiveManifest(msgspec.Struct, frozen=True, kw_only=True):
    """What an archive holds, where it came from, and how to check it."""

    format: int
    pjai_version: str
    schema_fingerprint: str
    schema_version: int
    store_id: str
    client_id: str
    created_at: UtcDatetime
    head: Position
    events: int
    files: dict[str, ArchiveFile]
    sealed_with: str | None = None
    """The codec that sealed the events' sensitive fields and the snapshot's sensitive
    columns (its name holds the store key's fingerprint); ``None``: plain."""

    @property
    def rows(self) -> dict[str, int]:
        """Rows in the snapshot, per table."""
        found = ((TABLE_FILE.fullmatch(name), file) for name, file in self.files.items())
        return {match["table"]: file.lines for match, file in found if match}


class FormatProbe(msgspec.Struct):
    """Just the format number, read before the rest of the manifest."""

    format: int


@dataclass(frozen=True, slots=True)
class ImportResult:
    """The outcome of :func:`import_archive`.

    ``applied`` counts the events that materialized (the others are kept in the log with
    the reason, as in the source). ``snapshot_checked`` is false when the archive was
    written with another schema; ``note`` then says so.
    """

    manifest: ArchiveManifest
    events: int
    applied: int
    rows: Mapping[str, int]
    snapshot_checked: bool
    note: str | None = None


class Tally:
    """Counts work for a ``progress(done, total)`` callback and reports it now and then."""

    def __init__(self, progress: Progress | None, total: int) -> None:
        self.progress, self.total, self.done, self._reported = progress, total, 0, 0

    def add(self, count: int = 1) -> None:
        """Count ``count`` more units of work done."""
        self.done += count
        if self.progress and (self.done - self._reported >= BATCH or self.done >= self.total):
            self._reported = self.done
            self.progress(self.done, max(self.total, self.done))


def table_lines(
    store: Store,
    table: Table,
    sealer: ColumnCodec | None = None,
    made: Mapping[str, bytes] | None = None,
) -> Generator[bytes, None, None]:
    """The table's rows in primary key order, each as canonical JSON; with ``sealer``,
    the sensitive columns sealed under a data key of the row's persona: of the lineage
    of the key that sealed her creation, whose stored arguments ``made`` holds by
    persona, else her current one."""
    made = made or {}
    columns = [column.name for column in table.columns]
    names = ", ".join(f'"{name}"' for name in columns)
    keys = ", ".join(f'"{c.name}"' for c in table.primary_key.columns) or "rowid"
    sealed = sealer.columns.get(table.name, ()) if sealer is not None else ()
    owner = persona_column(table.name)
    with closing(store.stream(f'SELECT {names} FROM "{table.name}" ORDER BY {keys}')) as rows:
        for row in rows:
            values = {c: plain(v) for c, v in zip(columns, row, strict=True)}
            if sealer is not None and sealed:
                persona = values.get(owner)
                creation = None if persona is None else made.get(persona)
                values = sealer.seal_row(table.name, values, persona, creation)
            yield encode_row(values)


def opened_line(line: bytes, table: Table, sealer: ColumnCodec | None) -> bytes:
    """A snapshot line of ``table`` with its sealed columns opened (as written
    before sealing), or the line as it is when nothing in it is sealed."""
    if sealer is None or table.name not in sealer.columns:
        return line
    row = msgspec.json.decode(line, type=dict[str, Any])
    return encode_row(sealer.open_row(table.name, row))


def plain(value: Any) -> Any:
    # PJai's fixed-width UTC text, as the store keeps it, rather than msgspec's "Z" form.
    return to_iso(value) if isinstance(value, datetime) else value


@contextmanager
def closing(rows: Iterator[T]) -> Iterator[Iterator[T]]:
    """Close a row generator even when left early: ``Store.stream`` holds the store lock."""
    try:
        yield rows
    finally:
        if isinstance(rows, Generator):
            rows.close()
