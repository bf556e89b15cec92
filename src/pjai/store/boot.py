"""A store file's making and its identity: a new file is made whole before it is put in
place, and an existing one is checked on opening (format, mode, codec)."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import apsw

from pjai.errors import StoreCorruptError, StoreError, StoreModeError
from pjai.files import fsync_path
from pjai.resource import Resource
from pjai.schema.codec import PLAIN
from pjai.schema.event import Schema
from pjai.schema.types import new_id
from pjai.store.log import EventLog
from pjai.store.sqlite import use_wal
from pjai.store.state import StateWriter

__all__ = ["FORMAT", "boot", "make_whole"]

FORMAT = "1"
"""The store file format this PJai reads and writes."""


def make_whole(file: Path, make: Callable[[Path], Resource]) -> None:
    """Make the store file ``file`` with ``make`` beside it, then put it in place: a
    process stopped meanwhile leaves no half-made file behind, and of processes making
    it at once, one puts its file in place and the others open that one."""
    partial = file.with_name(f"{file.name}.new-{new_id()}")
    try:
        make(partial).close()  # the last connection: its -wal file is checkpointed and removed
        if Path(f"{partial}-wal").exists():
            raise StoreError(f"making {file}: {partial.name}-wal was left after closing")
        try:
            os.link(partial, file)  # never over a file another process put there
        except FileExistsError:
            pass
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV):
                raise
            if not file.exists():  # a file system without hard links
                os.replace(partial, file)
        fsync_path(file.parent)
    finally:
        for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
            leftover.unlink(missing_ok=True)


def boot(
    conn: apsw.Connection,
    log: EventLog,
    state: StateWriter,
    path: Path | None,
    schema: Schema,
    *,
    sync: bool,
) -> dict[str, str]:
    """The store's kept values (identity, mode, fingerprint...), after making its log
    and state in an empty file and checking an existing one: a file of another format,
    of the other mode, or sealed with another codec is refused."""
    mode = "sync" if sync else "standalone"
    if not log.exists():
        if conn.execute("SELECT count(*) FROM sqlite_schema").get:
            raise StoreCorruptError(f"{path} is an SQLite database but not a PJai store")
        if path is not None:
            use_wal(conn)
        with conn:
            log.create()
            state.create()
            log.set_meta(
                format=FORMAT,
                store_id=new_id(),
                client_id=new_id(),
                generation="0",
                mode=mode,
                fingerprint=schema.fingerprint,
            )
    meta = log.meta()
    if meta.get("format") != FORMAT:
        raise StoreError(
            f"{path} has store format {meta.get('format')!r}; this PJai reads "
            f"format {FORMAT}. Open it with the PJai version that wrote it."
        )
    log.upgrade()
    _check_codec(conn, log, meta, path, schema)
    if meta["mode"] != mode:
        raise StoreModeError(f"{path} is a {meta['mode']} store; open it with sync={not sync}")
    return meta


def _check_codec(
    conn: apsw.Connection, log: EventLog, meta: dict[str, str], path: Path | None, schema: Schema
) -> None:
    """A store sealed by a codec opens only with it; a plain one takes a codec (its
    older events stay plain, new ones are sealed) and remembers it."""
    kept, given = meta.get("codec", PLAIN.name), schema.codec.name
    if kept == given:
        return
    if kept != PLAIN.name:
        raise StoreError(
            f"{path}'s sensitive fields are sealed ({kept}): open it with its key "
            f"ring (PJAI_PASSPHRASE or PJAI_KEY_FILE, docs/security.md), not {given}"
        )
    with conn:
        log.set_meta(codec=given)
    meta["codec"] = given
