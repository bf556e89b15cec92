"""Portable archives: export a data directory's history, restore it into an empty one.

An archive is a zip file holding ``manifest.json``, ``events.jsonl`` (the event log, one
:class:`~pjai.schema.records.EventRecord` per line, arguments kept byte for byte) and
``tables/<table>.jsonl`` (every state table, one row per line in primary key order, as
canonical JSON). The manifest records the schema the snapshot was written with and the
SHA-256, size and line count of every file, so an import refuses a damaged archive
before it writes anything, and afterwards proves that replaying the events rebuilt the
state the archive recorded.
"""

from __future__ import annotations

from pjai.hybrid.archive.export import export_archive
from pjai.hybrid.archive.format import (
    EVENTS_FILE,
    FORMAT,
    MANIFEST_FILE,
    ArchiveFile,
    ArchiveManifest,
    ImportResult,
)
from pjai.hybrid.archive.restore import import_archive

__all__ = [
    "EVENTS_FILE",
    "FORMAT",
    "MANIFEST_FILE",
    "ArchiveFile",
    "ArchiveManifest",
    "ImportResult",
    "export_archive",
    "import_archive",
]
