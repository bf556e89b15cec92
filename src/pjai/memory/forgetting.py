"""Forgetting personas' memory vectors: deleting them from the vector file and rewriting
it, so that nothing of them is left in it (a persona erased here or on another device)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import NamedTuple

import apsw

__all__ = ["Forgotten", "forget_persona", "forget_personas_but"]

log = logging.getLogger(__name__)


class Forgotten(NamedTuple):
    """What forgetting personas' vectors did: how many it deleted, and whether the file
    was rewritten with its log emptied (a reader of an older state keeps the log)."""

    vectors: int
    rewritten: bool


def forget_persona(path: Path, persona_id: str, *, rewrite: bool = False) -> Forgotten:
    """Delete the vectors of ``persona_id``'s memories from the vector file at ``path``
    (if there is one) and rewrite it, so that nothing of them is left in it; with
    ``rewrite``, the file is rewritten even when it holds none of them (an erasure
    stopped after deleting them, before the rewrite). Loads no model. Waits for a
    writer (the background indexer) for up to 30 s, and for readers to let the log be
    emptied for up to 5 s."""
    return _forget(path, lambda _found: {persona_id}, rewrite=rewrite)


def forget_personas_but(path: Path, live: Collection[str]) -> Forgotten:
    """As :func:`forget_persona`, for every persona the vector file holds that is not
    in ``live`` (erased here or on another device)."""
    return _forget(path, lambda found: found - set(live))


def _forget(
    path: Path, gone: Callable[[set[str]], set[str]], *, rewrite: bool = False
) -> Forgotten:
    if not path.exists():
        return Forgotten(0, False)
    db = apsw.Connection(str(path))
    try:
        db.execute("PRAGMA busy_timeout=30000")  # an indexer may be writing
        deleted = 0
        if db.execute("SELECT 1 FROM sqlite_schema WHERE name = 'vectors'").fetchone():
            found = {row[0] for row in db.execute("SELECT DISTINCT persona_id FROM vectors")}
            with db:
                for persona_id in gone(found):
                    db.execute("DELETE FROM vectors WHERE persona_id = ?", (persona_id,))
                    deleted += db.changes()
        if not deleted and not rewrite:
            return Forgotten(0, False)
        db.execute("VACUUM")
        db.execute("PRAGMA busy_timeout=0")  # a checkpoint would wait the timeout for readers
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            busy = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()[0][0]
            if not busy:
                return Forgotten(deleted, True)
            time.sleep(0.1)
        log.warning("%s: a reader kept the log from being emptied after an erasure", path)
        return Forgotten(deleted, False)
    finally:
        db.close()
