"""Small files PJai writes whole: each writer writes a temporary file of its own beside
the target and renames it over the target, so that a reader sees the old text or the
new, never part of one, and writers at once never write into one temporary file. A
file whose loss would lock data away (a key file) is also made durable: its bytes on
the disk before it is named, its name on the disk before the writer goes on. Such files
are read back with :func:`read_json`."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "create_text",
    "fsync_path",
    "json_value",
    "read_json",
    "replace_text",
    "written_beside",
]


@contextmanager
def written_beside(path: Path, text: str, *, durable: bool = False) -> Iterator[Path]:
    """A temporary file of this writer's own beside ``path`` holding ``text`` (UTF-8,
    readable by its owner only; with ``durable``, flushed to the disk), removed when the
    block ends unless it was moved."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    temporary = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            if durable:
                out.flush()
                os.fsync(out.fileno())
        yield temporary
    finally:
        temporary.unlink(missing_ok=True)


def replace_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all; of writers at once, the last one's
    text stays. Raises ``OSError`` when the directory cannot be written."""
    with written_beside(path, text) as temporary:
        temporary.replace(path)


def create_text(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` unless a file is there, durably (the file and its name
    are on the disk when this returns); whether this call made it. Of writers at once,
    one makes it; on a file system without hard links, the last one's text stays.
    Raises ``OSError`` when the directory cannot be written."""
    with written_beside(path, text, durable=True) as temporary:
        try:
            os.link(temporary, path)  # fails where the file is, unlike a rename
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links
            if path.exists():
                return False
            temporary.replace(path)
    fsync_path(path.parent)
    return True


def fsync_path(path: Path) -> None:
    """Flush ``path`` (a file, or a directory: the names in it) to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def json_value(text: str) -> Any:
    """The JSON value ``text`` holds. Raises ``ValueError`` saying why when it holds
    none, including JSON nested deeper than Python's stack lets the parser go (which
    :func:`json.loads` raises as a ``RecursionError``)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("its arrays or objects are nested too deeply to read") from None


def read_json(path: Path) -> Any:
    """The JSON value the UTF-8 file ``path`` holds. Raises ``OSError`` when it cannot
    be read and ``ValueError`` saying why when it holds no JSON (:func:`json_value`)."""
    return json_value(path.read_text(encoding="utf-8"))
