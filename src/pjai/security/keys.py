"""The keys of one data directory: a store key, and a data key per persona wrapped by it.

The store key is 32 random bytes. On disk it exists only wrapped (AES-256-GCM) by a key
made from a passphrase (Argon2id), by a key file, or by a one-time recovery code; any
of them unlocks it, and changing the passphrase re-wraps it without touching data
(:mod:`pjai.security.wraps`).
Each persona's sensitive fields are encrypted with that persona's data key, kept
wrapped by the store key. Rotating gives a persona a new data key for its future
events; the old ones stay to read the past until the persona is erased.

A persona's data keys form a lineage: the first is made as the persona is created
(:meth:`KeyRing.start`), each rotation keeps its lineage (the first key's id), and the
lineage is bound to the wrapped key as its scope is (:mod:`pjai.security.datakeys`).
An erased persona's id may be given again by a device that had not heard of the
erasure: the new persona's keys are of a lineage of their own, and an erasure destroys
only the lineages of the persona it erases (:meth:`KeyRing.erase`,
:mod:`pjai.security.shredding`), with the keys that have none (made before keys had
lineages, or for a persona created before encryption was on).

The keys live in ``keys.db``, a small mutable SQLite file beside the store, **not** in
the event log: an append-only log cannot forget a key, and erasing a persona is
forgetting its keys (crypto-shredding). The file is written with ``secure_delete`` and
a rollback journal, so a deleted key's bytes are overwritten in the file and no
write-ahead log keeps an old copy (:mod:`pjai.security.keyfile`,
:mod:`pjai.security.ringfile`). This module makes and opens it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

import apsw

from pjai.errors import KeyRingError
from pjai.files import fsync_path
from pjai.schema.personas import NO_PERSONA_ID
from pjai.security.keyfile import FORMAT, READS, SCHEMA, connect, upgrade
from pjai.security.locks import (
    KEY_BYTES,
    Argon2Params,
    check_passphrase,
    fingerprint,
    open_store_key,
)
from pjai.security.oskeyring import recall
from pjai.security.shredding import ErasedKey, Shredding
from pjai.security.wraps import Wraps, wrap_ids

__all__ = [
    "KEYS_FILE",
    "STORE_SCOPE",
    "Argon2Params",
    "ErasedKey",
    "KeyRing",
    "fingerprint",
    "store_fingerprint",
]

KEYS_FILE = "keys.db"
"""The key ring's file in a data directory."""

STORE_SCOPE = NO_PERSONA_ID
"""The scope of the data key for sensitive fields that belong to no persona (no persona
may have this id)."""


def store_fingerprint(path: Path) -> str:
    """The fingerprint of the store key of the key ring at ``path``, read without
    unlocking it."""
    conn, meta = _existing(path)
    conn.close()
    if "store key" not in meta:
        raise KeyRingError(f"{path} is not a key ring")
    return meta["store key"]


def _existing(path: Path) -> tuple[apsw.Connection, dict[str, str]]:
    """A connection to the key ring file at ``path`` and its ``meta`` table, read before
    anything is written to it (empty where the file has none: not a key ring)."""
    if not path.exists():
        raise KeyRingError(f"no key ring at {path}: `pjai security init` makes one")
    try:
        conn = connect(path)
    except apsw.Error as exc:
        raise KeyRingError(f"{path} is damaged ({exc}): restore it from a backup") from exc
    try:
        rows = conn.execute("SELECT name, value FROM meta").fetchall()
    except apsw.SQLError:
        rows = []  # no meta table: not a key ring
    except apsw.Error as exc:
        conn.close()
        raise KeyRingError(f"{path} is damaged ({exc}): restore it from a backup") from exc
    return conn, {str(k): str(v) for k, v in rows}


class KeyRing(Wraps, Shredding):
    """An unlocked key ring. Make one with :meth:`create`, open one with :meth:`unlock`;
    :meth:`close` it (or use it as a context manager). Safe to share between threads
    (one call at a time). Keys are kept in memory once read; a change another process
    makes to the file (an erasure, a rotation) is seen within
    :data:`~pjai.security.ringfile.FRESH_S`."""

    def __init__(
        self,
        conn: apsw.Connection,
        path: Path,
        store_key: bytes,
        seen: dict[str, frozenset[str]] | None = None,
    ) -> None:
        super().__init__(conn, path, store_key)
        self._seen = wrap_ids(conn) if seen is None else seen

    def proof(self, purpose: str, *parts: str) -> str:
        """An HMAC-SHA256 of ``purpose`` and ``parts`` under the store key, in hex: what
        only a device of the store can make, not the sync server nor a token holder."""
        message = b"\x00".join(part.encode() for part in (purpose, *parts))
        return hmac.new(self._store_key, message, hashlib.sha256).hexdigest()

    @classmethod
    def create(
        cls,
        path: str | Path,
        *,
        passphrase: str | None = None,
        key_file: str | Path | None = None,
        params: Argon2Params | None = None,
    ) -> KeyRing:
        """A new key ring at ``path`` with a new random store key, wrapped by
        ``passphrase`` and/or ``key_file`` (made, mode 600, if it does not exist)."""
        target = Path(path)
        if target.exists():
            raise KeyRingError(f"{target} exists: this data directory has a key ring already")
        if passphrase is None and key_file is None:
            raise KeyRingError("a key ring needs a passphrase or a key file to lock it")
        if passphrase is not None:
            check_passphrase(passphrase)
        # Made under another name, then linked in place: a link never replaces a ring
        # another process made meanwhile, and a failure removes only this draft.
        draft = target.with_name(f".{target.name}.{secrets.token_hex(6)}.new")
        store_key = secrets.token_bytes(KEY_BYTES)
        conn = connect(draft)
        try:
            conn.execute(SCHEMA)
            ring = cls(conn, draft, store_key)
            with ring._transaction():
                conn.execute(
                    "INSERT INTO meta VALUES ('format', ?), ('store key', ?)",
                    (FORMAT, fingerprint(store_key)),
                )
                if passphrase is not None:
                    ring._wrap_with_passphrase(passphrase, params or Argon2Params())
                if key_file is not None:
                    ring._wrap_with_key_file(Path(key_file))
            conn.close()
            try:
                os.link(draft, target)
            except FileExistsError:
                raise KeyRingError(
                    f"{target} exists: this data directory has a key ring already"
                ) from None
            fsync_path(target.parent)  # its name on the disk before data is sealed by it
        finally:
            conn.close()
            draft.unlink(missing_ok=True)
        return cls(connect(target), target, store_key)

    @classmethod
    def unlock(
        cls,
        path: str | Path,
        *,
        passphrase: str | None = None,
        key_file: str | Path | None = None,
        os_keyring: bool = False,
    ) -> KeyRing:
        """Open the key ring at ``path`` with its passphrase or key file, or, with
        ``os_keyring`` and neither given, with its store key kept in the OS keyring
        (:meth:`remember`). A recovery code opens it through :meth:`recover`, which
        replaces it with a passphrase. :class:`~pjai.errors.KeyRingError` names what did
        not open it."""
        return cls._open(
            Path(path), passphrase=passphrase, key_file=key_file, os_keyring=os_keyring
        )

    @classmethod
    def _open(
        cls,
        target: Path,
        *,
        passphrase: str | None = None,
        key_file: str | Path | None = None,
        recovery_code: str | None = None,
        os_keyring: bool = False,
    ) -> KeyRing:
        conn, meta = _existing(target)
        try:
            found = meta.get("format")
            if found not in READS:
                what = "no format" if found is None else f"format {found!r}"
                raise KeyRingError(
                    f"{target} is not a key ring this PJai reads ({what}; it reads formats "
                    f"{', '.join(READS)}): one made by a newer PJai opens with that PJai"
                )
            upgrade(conn)  # a ring made by an older PJai lacks the newer tables and columns
            # Read before the store key is unlocked (stretching takes a while): a lock
            # another process changes meanwhile is then seen as changed.
            seen = wrap_ids(conn)
            given = passphrase is not None or key_file is not None or recovery_code is not None
            kept = recall(meta.get("store key", "")) if os_keyring and not given else None
            store_key = kept or open_store_key(
                conn,
                meta.get("store key", ""),
                passphrase=passphrase,
                key_file=key_file,
                recovery_code=recovery_code,
            )
        except BaseException:
            conn.close()
            raise
        return cls(conn, target, store_key, seen)

    @classmethod
    def recover(
        cls,
        path: str | Path,
        recovery_code: str,
        passphrase: str,
        params: Argon2Params | None = None,
    ) -> KeyRing:
        """Open the key ring with its one-time recovery code and lock it with a new
        ``passphrase``: the code is used up, in the same transaction as the new
        passphrase is set, so that a failure leaves the code working."""
        check_passphrase(passphrase)
        ring = cls._open(Path(path), recovery_code=recovery_code)
        try:
            with ring._guard(), ring._changing("recovery code"):  # used once, and only this one
                ring._retire("passphrase", "recovery code")
                ring._wrap_with_passphrase(passphrase, params or Argon2Params())
        except BaseException:
            ring.close()
            raise
        return ring
