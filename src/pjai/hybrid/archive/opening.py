"""Opening an archive's zip file, its list of files bounded before it is read."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pjai.errors import ArchiveCorruptError, ConfigError

__all__ = ["MAX_LISTING", "opened_archive"]

MAX_LISTING = 1 << 20
"""The most bytes an archive's list of files (the zip's central directory) may take.
A PJai archive lists a manifest, the events and one file per table: a few kB."""


class _Listing(ArchiveCorruptError):
    """A read longer than :data:`MAX_LISTING` while the zip's listing is read."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


class _Bounded(io.BufferedReader):
    """A file that refuses, while ``bounded``, any read longer than :data:`MAX_LISTING`.

    ``zipfile`` reads a zip's central directory in one read of the size the zip states,
    then makes an object per member: a zip of a million empty members (88 MB) takes
    some 600 MB to open, before anything can look at what it holds."""

    bounded = True

    def read(self, size: int | None = -1, /) -> bytes:
        if self.bounded and size is not None and size > MAX_LISTING:
            raise _Listing(size)
        return super().read(size)


@contextmanager
def opened_archive(archive: Path) -> Iterator[zipfile.ZipFile]:
    """The zip file ``archive``, open for reading; an error naming it when it is no zip
    (:class:`~pjai.errors.ArchiveCorruptError`) or cannot be read
    (:class:`~pjai.errors.ConfigError`)."""
    try:
        raw = _Bounded(io.FileIO(archive))
    except OSError as exc:
        raise ConfigError(f"cannot read the archive {archive}: {exc}") from exc
    with raw:
        try:
            zf = zipfile.ZipFile(raw)
        except _Listing as exc:
            raise ArchiveCorruptError(
                f"{archive} is not a PJai archive: its list of files takes {exc.size} "
                f"bytes, more than the {MAX_LISTING} a PJai archive may (it lists a "
                "manifest, the events and one file per table)"
            ) from None
        except zipfile.BadZipFile as exc:
            raise ArchiveCorruptError(f"{archive} is not a PJai archive: {exc}") from exc
        except OSError as exc:
            raise ConfigError(f"cannot read the archive {archive}: {exc}") from exc
        raw.bounded = False
        with zf:
            yield zf
