"""An archive's members: each checked against the manifest before anything is written,
then read line by line, a damaged one named in the error."""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import msgspec

from pjai.errors import ArchiveCorruptError, ArchiveError
from pjai.hybrid.archive.format import (
    CHUNK,
    EVENTS_FILE,
    FORMAT,
    MANIFEST_FILE,
    MAX_MANIFEST_BYTES,
    TABLE_FILE,
    ArchiveFile,
    ArchiveManifest,
    FormatProbe,
)

__all__ = ["MAX_LINE", "checked_manifest", "member_lines", "reading"]

MAX_LINE = 16 * 1024 * 1024
"""The longest line an archive member may hold: an event or row at its largest (2 MiB of
arguments, more once sealed and escaped) with room to spare."""

_ENCRYPTED = 0x1
"""The zip flag bit of an encrypted member."""
_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})


def _is_subject_export(manifest: bytes) -> bool:
    """Whether ``manifest`` is the manifest of a data-subject export
    (:func:`pjai.app.subject.export_subject`), which names a persona and no format."""
    try:
        found = msgspec.json.decode(manifest)
    except msgspec.DecodeError:
        return False
    return isinstance(found, dict) and "format" not in found and "persona_id" in found


@contextmanager
def reading(archive: Path, member: str) -> Iterator[None]:
    """Translate what a damaged zip member raises into an error naming it."""
    try:
        yield
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise ArchiveCorruptError(f"{archive}: {member} is damaged ({exc})") from exc


def checked_manifest(zf: zipfile.ZipFile, archive: Path) -> ArchiveManifest:
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
    with reading(archive, MANIFEST_FILE), zf.open(MANIFEST_FILE) as member:
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
    with reading(archive, name), zf.open(name) as member:
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


def member_lines(member: IO[bytes], archive: Path, name: str) -> Iterator[tuple[int, bytes]]:
    """The numbered lines of an archive member, each whole (ending in a newline) and at
    most :data:`MAX_LINE` bytes: an archive's own sizes do not bound what it inflates."""
    number = 0
    while line := member.readline(MAX_LINE + 1):
        number += 1
        if not line.endswith(b"\n"):
            problem = "is longer than PJai writes" if len(line) > MAX_LINE else "has no newline"
            raise ArchiveCorruptError(f"{archive}: {name} line {number} {problem}")
        yield number, line
