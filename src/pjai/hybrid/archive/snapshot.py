"""The archive's snapshot against the state replayed from its events, row by row."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import Table

from pjai.errors import ArchiveCorruptError, ErasedValueError
from pjai.hybrid.archive.format import ArchiveManifest, Tally, closing, opened_line, table_lines
from pjai.hybrid.archive.members import member_lines, reading
from pjai.schema.tables import persona_column
from pjai.store import Store

__all__ = ["compare"]


def compare(
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
            reading(archive, name),
            zf.open(name) as snapshot,
            closing(table_lines(store, table)) as replayed,
        ):
            number = 0
            for number, line in member_lines(snapshot, archive, name):
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
