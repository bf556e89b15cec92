"""Small files PJai writes whole: each writer writes a temporary file of its own beside
the target and renames it over the target, so that a reader sees the old text or the
new, never part of one, and writers at once never write into one temporary file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["replace_text", "written_beside"]


@contextmanager
def written_beside(path: Path, text: str) -> Iterator[Path]:
    """A temporary file of this writer's own beside ``path`` holding ``text`` (UTF-8,
    readable by its owner only), removed when the block ends unless it was moved."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    temporary = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        yield temporary
    finally:
        temporary.unlink(missing_ok=True)


def replace_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all; of writers at once, the last one's
    text stays. Raises ``OSError`` when the directory cannot be written."""
    with written_beside(path, text) as temporary:
        temporary.replace(path)
