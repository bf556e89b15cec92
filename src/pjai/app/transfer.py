"""Bringing data into a directory and out of it: archives and desktop databases.

Every import opens its target as the directory says it must be opened: an encrypted
directory's events are sealed with its key ring (and its SQL columns, when the primary
keeps them sealed), so an import never writes readable text where the rest is sealed.
"""

from __future__ import annotations

from pathlib import Path

from pjai.app.datadir import DataDir
from pjai.errors import ConfigError
from pjai.hybrid import HybridDatabaseManager, archive, legacy
from pjai.hybrid.archive import ArchiveManifest, ImportResult
from pjai.hybrid.legacy import LegacyImport
from pjai.memory.classify import restricted_tags
from pjai.store import Progress

__all__ = [
    "MAX_UPLOAD_MB",
    "UPLOAD_PROGRESS_BYTES",
    "UPLOAD_TIMEOUT_S",
    "export_archive",
    "import_archive",
    "import_legacy",
]

MAX_UPLOAD_MB = 1024
"""The largest upload the web app takes by default, in MB of 1,048,576 bytes (``pjai
serve --max-upload-mb``): the archive of a store of a million memories, about 80 MB of
the benchmarks' memories and some 300 MB of less repetitive text, with room to spare
(docs/web.md, "Uploads")."""

UPLOAD_TIMEOUT_S = 30.0
"""How long the server waits for an upload's body to move on by
:data:`UPLOAD_PROGRESS_BYTES` (``pjai serve --upload-timeout-s``) before it answers 408
and lets the upload's place go. Half a minute rides out a link that drops packets for a
while (TCP's retransmissions back off 1, 2, 4, 8 s) or a browser on a busy machine,
and frees the place of a client that stopped, or that trickles its body, as soon."""

UPLOAD_PROGRESS_BYTES = 64 * 1024
"""How much of an upload's body must arrive within each :data:`UPLOAD_TIMEOUT_S`: about
2 KB/s at the default (17 kbit/s, below any link a browser uploads an archive over),
while a byte every few seconds, which would hold a place for ever, is far below it."""


def export_archive(
    manager: HybridDatabaseManager,
    file: Path,
    *,
    progress: Progress | None = None,
    overwrite: bool = False,
) -> ArchiveManifest:
    """Write the event log and a snapshot of every table to the archive ``file``; never
    over a file the directory keeps (:meth:`DataDir.refuse_kept`)."""
    DataDir(manager.data_dir).refuse_kept(file, manager.shards)
    return archive.export_archive(manager, file, progress=progress, overwrite=overwrite)


def import_archive(
    data_dir: DataDir, file: Path, *, progress: Progress | None = None, sync: bool = False
) -> ImportResult:
    """Restore the archive ``file`` into the empty ``data_dir``; an encrypted archive
    into a directory holding a copy of its key ring, unlocked as the directory says."""
    options = data_dir.opening_options()
    return archive.import_archive(data_dir.path, file, progress=progress, sync=sync, **options)


def import_legacy(
    data_dir: DataDir,
    source: Path,
    *,
    report: Path | None = None,
    progress: Progress | None = None,
) -> LegacyImport:
    """Import a PJai desktop database's personas, memories and conversations into
    ``data_dir``; the rows not imported are listed in ``report`` (by default
    :data:`~pjai.hybrid.legacy.REPORT_FILE` in the directory)."""
    report_path = report or data_dir.legacy_report_path
    if report_path.resolve() != data_dir.legacy_report_path.resolve() and data_dir.owns(
        report_path
    ):
        raise ConfigError(f"the report {report_path} would replace a file PJai keeps there")
    options = data_dir.opening_options()
    return legacy.import_into(
        data_dir.path,
        source,
        report_path=report_path,
        progress=progress,
        tag=restricted_tags,  # memories holding restricted data are tagged so
        **options,
    )
