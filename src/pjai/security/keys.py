"""The keys of one data directory: a store key, and a data key per persona wrapped by it.

The store key is 32 random bytes. On disk it exists only wrapped (AES-256-GCM) by a key
made from a passphrase (Argon2id), by a key file, or by a one-time recovery code; any
of them unlocks it, and changing the passphrase re-wraps it without touching data.
Each persona's sensitive fields are encrypted with that persona's data key, kept
wrapped by the store key. Rotating gives a persona a new data key for its future
events; the old ones stay to read the past until the persona is erased.

A persona's data keys form a lineage: the first is made as the persona is created
(:meth:`KeyRing.start`), each rotation keeps its lineage (the first key's id), and the
lineage is bound to the wrapped key as its scope is. An erased persona's id may be given
again by a device that had not heard of the erasure: the new persona's keys are of a
lineage of their own, and an erasure destroys only the lineages of the persona it
erases (:meth:`KeyRing.erase`), with the keys that have none (made before keys had
lineages, or for a persona created before encryption was on).

The keys live in ``keys.db``, a small mutable SQLite file beside the store, **not** in
the event log: an append-only log cannot forget a key, and erasing a persona is
forgetting its keys (crypto-shredding). The file is written with ``secure_delete`` and
a rollback journal, so a deleted key's bytes are overwritten in the file and no
write-ahead log keeps an old copy.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import apsw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pjai.errors import KeyRingError
from pjai.files import create_text, fsync_path
from pjai.resource import Resource
from pjai.schema.personas import NO_PERSONA_ID
from pjai.schema.types import new_id
from pjai.security.keyfile import (
    FORMAT,
    READS,
    SCHEMA,
    connect,
    data_key_aad,
    now,
    upgrade,
)
from pjai.security.locks import (
    KEY_BYTES,
    Argon2Params,
    blob,
    check_passphrase,
    fingerprint,
    open_store_key,
    plain_code,
    read_key_file,
    stretch,
    wrap_aad,
)
from pjai.security.oskeyring import forget, recall, remember

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


FRESH_S = 0.5
"""How often the ring looks for changes other processes made to its file."""

T = TypeVar("T")
_NONCE_BYTES = 12


def _text(value: object) -> str | None:
    """A nullable text column's value."""
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class ErasedKey:
    """A data key that was destroyed: which, of what scope, its fingerprint, when."""

    key_id: str
    scope: str
    fingerprint: str
    erased_at: datetime


def _locked(method: Callable[..., T]) -> Callable[..., T]:
    """Run ``method`` under the ring's lock: one thread at a time on its connection. A
    file found damaged on the way (a page that does not read, text that is not text) is
    a :class:`~pjai.errors.KeyRingError` that says so."""

    @functools.wraps(method)
    def run(self: KeyRing, *args: Any, **kwargs: Any) -> T:
        with self._guard():
            return method(self, *args, **kwargs)

    return run


def _wrap_ids(conn: apsw.Connection) -> dict[str, frozenset[str]]:
    """The ids of the store key's locks, by kind."""
    found: dict[str, set[str]] = {}
    for wrap_id, kind in conn.execute("SELECT id, kind FROM wraps"):
        found.setdefault(str(kind), set()).add(str(wrap_id))
    return {kind: frozenset(ids) for kind, ids in found.items()}


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


class KeyRing(Resource):
    """An unlocked key ring. Make one with :meth:`create`, open one with :meth:`unlock`;
    :meth:`close` it (or use it as a context manager). Safe to share between threads
    (one call at a time). Keys are kept in memory once read; a change another process
    makes to the file (an erasure, a rotation) is seen within :data:`FRESH_S`."""

    def __init__(
        self,
        conn: apsw.Connection,
        path: Path,
        store_key: bytes,
        seen: dict[str, frozenset[str]] | None = None,
    ) -> None:
        self._conn = conn
        self.path = path
        self._store_key = store_key
        self._cache: dict[str, bytes] = {}
        self._current: dict[str, tuple[str, bool]] = {}
        """By scope, the current key's id, and whether the persona written for decides
        the key (:meth:`current`): the scope holds keys of more than one lineage, or
        erased some."""
        self._lock = threading.RLock()
        self._version = self._data_version()
        self._looked = time.monotonic()
        self._seen = _wrap_ids(conn) if seen is None else seen
        """The locks as this ring found them (as they were read to unlock it): a change
        of them waits until no other process has changed them meanwhile
        (:meth:`_changing`)."""

    # -- making and opening ------------------------------------------------------------

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
            seen = _wrap_ids(conn)
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

    @_locked
    def close(self) -> None:
        """Close the file and forget the keys held in memory."""
        self._cache.clear()
        self._current.clear()
        self._conn.close()

    # -- locks -------------------------------------------------------------------------

    @_locked
    def change_passphrase(self, passphrase: str, params: Argon2Params | None = None) -> None:
        """Lock the store key with ``passphrase`` instead of the passphrase before (the
        data and data keys stay as they are)."""
        check_passphrase(passphrase)
        with self._changing("passphrase"):
            self._retire("passphrase")
            self._wrap_with_passphrase(passphrase, params or Argon2Params())

    def remember(self) -> None:
        """Keep the store key in the OS keyring, so that this device opens the ring
        without its passphrase (:class:`~pjai.errors.KeyRingError` if there is no OS
        keyring here)."""
        remember(self._store_key)

    def forget(self) -> bool:
        """Remove the store key from the OS keyring; whether it was there."""
        return forget(self.store_key_fingerprint)

    @property
    def remembered(self) -> bool:
        """Whether the OS keyring holds the store key."""
        return recall(self.store_key_fingerprint) is not None

    @_locked
    def retired(self) -> list[str]:
        """The ids of the wraps replaced here (a passphrase changed, a recovery code
        used or replaced), oldest first: the keys channel deletes them on the sync
        server."""
        rows = self._conn.execute("SELECT id FROM retired ORDER BY retired_at, id")
        return [str(row[0]) for row in rows]

    def _retire(self, *kinds: str) -> None:
        """Remove the wraps of ``kinds``, remembering their ids so that the keys channel
        deletes them on the sync server too (inside a transaction)."""
        marks = ", ".join("?" for _ in kinds)
        self._conn.execute(
            f"INSERT OR IGNORE INTO retired SELECT id, ? FROM wraps WHERE kind IN ({marks})",
            (now(), *kinds),
        )
        self._conn.execute(f"DELETE FROM wraps WHERE kind IN ({marks})", kinds)

    @_locked
    def add_key_file(self, key_file: str | Path) -> None:
        """Let ``key_file`` (made if it does not exist) unlock the store key too."""
        with self._transaction():
            self._conn.execute("DELETE FROM wraps WHERE kind = 'key file'")
            self._wrap_with_key_file(Path(key_file))

    @_locked
    def recovery_code(self, params: Argon2Params | None = None) -> str:
        """A new one-time recovery code that unlocks the store key (shown once; only
        its stretched form is kept). Replaces any code made before."""
        code = base64.b32encode(secrets.token_bytes(15)).decode()
        params = params or Argon2Params()
        salt = secrets.token_bytes(16)
        kek = stretch(plain_code(code), salt, params)
        with self._changing("recovery code"):
            self._retire("recovery code")
            self._wrap("recovery code", kek, params=params, salt=salt)
        return "-".join(code[i : i + 6] for i in range(0, len(code), 6))

    @_locked
    def locks(self) -> list[str]:
        """What can unlock the store key: ``passphrase``, ``key file``, ``recovery code``."""
        rows = self._conn.execute("SELECT kind FROM wraps ORDER BY kind").fetchall()
        return [str(kind) for (kind,) in rows]

    @property
    def store_key_fingerprint(self) -> str:
        """The store key's fingerprint."""
        return fingerprint(self._store_key)

    # -- data keys ---------------------------------------------------------------------

    @_locked
    def current(
        self, scope: str, made_with: Callable[[], str | None] | None = None
    ) -> tuple[str, bytes]:
        """The id and key that new sensitive fields of ``scope`` (a persona id, or
        :data:`STORE_SCOPE`) are encrypted with; made on first use. Raises
        :class:`~pjai.errors.KeyRingError` for an erased persona.

        When the ring holds keys of more than one lineage of ``scope``, or erased some
        (a persona given the id of one erased, whose keys came here beside the erased
        one's, or after them), which persona the key is for decides: ``made_with()`` is
        the id of the key that sealed that persona's creation (``None``: not known), and
        the key is the newest of its lineage, made the current one (:meth:`current_of`;
        refused for the erased one)."""
        self._follow_others()
        found = self._current.get(scope)
        if found is None:
            row = self._current_row(scope)
            if row is None:
                return self._new_data_key(scope, None)
            key_id = str(row[0])
            self._unwrap_data_key(key_id, scope, blob(row[1]), blob(row[2]), _text(row[3]))
            found = self._current[scope] = key_id, self._ambiguous(scope)
        key_id, ambiguous = found
        if ambiguous and made_with is not None and (creation := made_with()) is not None:
            return self.current_of(scope, creation)
        return key_id, self._cache[key_id]

    @_locked
    def current_of(self, scope: str, creation: str) -> tuple[str, bytes]:
        """The id and key that new sensitive fields of the persona of ``scope`` whose
        creation was sealed with the key ``creation`` are encrypted with: the newest key
        of that key's lineage (of the keys with none, for a key without one), made the
        current one of ``scope``. The current one as :meth:`current` has it when the
        ring holds no key of that lineage and it was not erased here. Raises
        :class:`~pjai.errors.KeyRingError` when it was: that persona was erased."""
        self._follow_others()
        held = self._conn.execute(
            "SELECT lineage FROM data_keys WHERE id = ? AND scope = ?", (creation, scope)
        ).fetchone()
        # A key not held (maybe not here yet) tells its lineage only if it started it.
        lineage = creation if held is None else _text(held[0])
        row = self._conn.execute(
            "SELECT id, nonce, wrapped, lineage, current FROM data_keys "
            "WHERE scope = ? AND lineage IS ? ORDER BY id DESC LIMIT 1",
            (scope, lineage),
        ).fetchone()
        if row is None:
            if self._was_erased(scope, lineage) or self.was_erased(creation):
                raise KeyRingError(f"{scope} was erased: nothing new is encrypted for it")
            return self.current(scope)
        key_id = str(row[0])
        key = self._unwrap_data_key(key_id, scope, blob(row[1]), blob(row[2]), _text(row[3]))
        if not row[4]:
            with self._writing():
                self._conn.execute(
                    "UPDATE data_keys SET current = (id = ?) WHERE scope = ?", (key_id, scope)
                )
            self._current[scope] = key_id, True
        return key_id, key

    @_locked
    def start(self, scope: str) -> tuple[str, bytes]:
        """A new data key for ``scope``, the first of a new lineage, that its new events
        are encrypted with from now on: a persona is being created (maybe with the id of
        one erased on a device this one has not heard from yet). The keys held for the
        scope stay, for reading; an erasure of the persona that had them does not
        destroy this one. Raises :class:`~pjai.errors.KeyRingError` when a persona of
        that id was erased here."""
        return self._new_data_key(scope, None, first=True)

    @_locked
    def key(self, key_id: str) -> bytes | None:
        """The data key ``key_id``, or ``None`` if it was erased or never was here."""
        self._follow_others()
        found = self._cache.get(key_id)
        if found is not None:
            return found
        row = self._conn.execute(
            "SELECT scope, nonce, wrapped, lineage FROM data_keys WHERE id = ?", (key_id,)
        ).fetchone()
        if row is None:
            return None
        return self._unwrap_data_key(key_id, str(row[0]), blob(row[1]), blob(row[2]), _text(row[3]))

    @_locked
    def rotate(self, scope: str) -> str:
        """A new data key for ``scope``'s future events, of the current key's lineage;
        the old ones stay for reading. Returns the new key's id."""
        self._follow_others()
        row = self._current_row(scope)
        return self._new_data_key(scope, None if row is None else _text(row[3]))[0]

    @_locked
    def scopes(self) -> dict[str, int]:
        """How many data keys each scope holds."""
        rows = self._conn.execute("SELECT scope, count(*) FROM data_keys GROUP BY scope")
        return {str(scope): int(count) for scope, count in rows}

    @_locked
    def lineages(self, scope: str) -> dict[str, str | None]:
        """The lineage of each data key ``scope`` holds, by key id (``None``: a key with
        no lineage)."""
        rows = self._conn.execute("SELECT id, lineage FROM data_keys WHERE scope = ?", (scope,))
        return {str(key_id): _text(lineage) for key_id, lineage in rows}

    @_locked
    def erase(self, scope: str, lineages: Collection[str] | None = None) -> list[ErasedKey]:
        """Destroy the data keys of ``scope``: what they encrypted can no longer be read,
        anywhere this file was the only copy. With ``lineages``, only the keys of those
        lineages and the keys with no lineage (made before keys had one, or for a
        persona created without one): the keys of one persona, not those of a persona
        given its id again after it was erased, which started a lineage of its own.
        Without, every key of the scope (an erasure that does not tell its lineages).
        Returns what was destroyed (ids and fingerprints, no key material)."""
        at = now()
        erased = []
        which = "scope = ?"
        args = [scope]
        if lineages is not None:
            which += " AND (lineage IS NULL OR lineage IN (SELECT value FROM json_each(?)))"
            args.append(json.dumps(sorted(lineages)))
        # Read and deleted under one write lock: a key another process gives the scope
        # meanwhile (a rotation, a key taken from the sync server) is destroyed and
        # recorded with the others, not destroyed unrecorded or kept.
        with self._writing():
            rows = self._conn.execute(
                f"SELECT id, nonce, wrapped, lineage FROM data_keys WHERE {which}", args
            ).fetchall()
            for key_id, nonce, wrapped, lineage in rows:
                try:
                    found = self._unwrap_data_key(
                        str(key_id), scope, blob(nonce), blob(wrapped), _text(lineage)
                    )
                    mark = fingerprint(found)
                except KeyRingError:  # an altered key is destroyed all the same
                    mark = "unreadable"
                self._conn.execute(
                    "INSERT OR REPLACE INTO erased (key_id, scope, fingerprint, erased_at, "
                    "lineage) VALUES (?, ?, ?, ?, ?)",
                    (key_id, scope, mark, at, lineage),
                )
                erased.append(ErasedKey(str(key_id), scope, mark, datetime.fromisoformat(at)))
            self._conn.execute(f"DELETE FROM data_keys WHERE {which}", args)
        for gone in erased:
            self._cache.pop(gone.key_id, None)
        self._current.pop(scope, None)
        self._conn.execute("VACUUM")  # no free page keeps a copy
        return erased

    @_locked
    def erased(self) -> list[ErasedKey]:
        """Every data key destroyed here, oldest first."""
        rows = self._conn.execute(
            "SELECT key_id, scope, fingerprint, erased_at FROM erased ORDER BY erased_at, key_id"
        )
        return [
            ErasedKey(str(a), str(b), str(c), datetime.fromisoformat(str(d))) for a, b, c, d in rows
        ]

    @_locked
    def was_erased(self, key_id: str) -> bool:
        """Whether ``key_id`` was destroyed here."""
        return (
            self._conn.execute("SELECT 1 FROM erased WHERE key_id = ?", (key_id,)).fetchone()
            is not None
        )

    # -- inside ------------------------------------------------------------------------

    def _data_version(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").get)

    def _follow_others(self) -> None:
        """Forget the keys in memory if another process changed the file since."""
        now = time.monotonic()
        if now - self._looked < FRESH_S:
            return
        self._looked = now
        version = self._data_version()
        if version != self._version:
            self._version = version
            self._cache.clear()
            self._current.clear()

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """The ring's lock, held by every use of its connection (:func:`_locked`)."""
        with self._lock:
            try:
                yield
            except (apsw.CorruptError, apsw.NotADBError, UnicodeDecodeError) as exc:
                raise KeyRingError(
                    f"{self.path} is damaged ({exc}): restore it from a backup"
                ) from exc

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._conn:
            yield

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """A transaction that holds the file's write lock from its start: what it reads
        no other process changes before it commits."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    @contextmanager
    def _changing(self, kind: str) -> Iterator[None]:
        """A transaction that changes the locks, taken only while the locks of ``kind``
        are as this ring found them: another process that changed them meanwhile (a
        passphrase changed, a recovery code used or replaced) wins, and this change
        is refused rather than undo it."""
        with self._writing():
            if _wrap_ids(self._conn).get(kind) != self._seen.get(kind):
                raise KeyRingError(
                    f"the key ring's {kind} was changed by another process since it was "
                    "opened here: open it again, with what unlocks it now"
                )
            yield
        self._seen = _wrap_ids(self._conn)

    def _current_row(self, scope: str) -> Any:
        """The current key of ``scope`` as the file holds it (id, nonce, wrapped,
        lineage); when none is current (its lineage was erased and another stays: a
        persona given the id of one erased), the newest it holds, made the current one;
        ``None`` when it holds none."""
        row = self._conn.execute(
            "SELECT id, nonce, wrapped, lineage, current FROM data_keys WHERE scope = ? "
            "ORDER BY current DESC, id DESC LIMIT 1",
            (scope,),
        ).fetchone()
        if row is not None and not row[4]:
            with self._writing():
                self._conn.execute(
                    "UPDATE data_keys SET current = (id = ?) WHERE scope = ?", (row[0], scope)
                )
        return row

    def _new_data_key(
        self, scope: str, lineage: str | None, *, first: bool = False
    ) -> tuple[str, bytes]:
        """A new key of ``scope`` made current: of ``lineage`` (``None``: none), or with
        ``first`` the first of a lineage of its own."""
        key_id, key = new_id(), secrets.token_bytes(KEY_BYTES)
        if first:
            lineage = key_id
        nonce = secrets.token_bytes(_NONCE_BYTES)
        wrapped = AESGCM(self._store_key).encrypt(nonce, key, data_key_aad(key_id, scope, lineage))
        with self._writing():  # an erasure by another process is not passed by
            # A persona is not made anew here with the id of one erased here: the
            # erasure is known on this device (its keys went), if not yet its event.
            if self._was_erased(scope, None if first else lineage):
                raise KeyRingError(f"{scope} was erased: nothing new is encrypted for it")
            self._conn.execute("UPDATE data_keys SET current = 0 WHERE scope = ?", (scope,))
            self._conn.execute(
                "INSERT INTO data_keys (id, scope, nonce, wrapped, current, created_at, lineage) "
                "VALUES (?, ?, ?, ?, 1, ?, ?)",
                (key_id, scope, nonce, wrapped, now(), lineage),
            )
        self._cache[key_id] = key
        self._current.pop(scope, None)  # read again: a lineage may have been added
        return key_id, key

    def _ambiguous(self, scope: str) -> bool:
        """Whether ``scope`` holds keys of more than one lineage (those with none
        counting as one), or had keys erased here: a persona of its id was erased, and
        the one written for may be her, not the persona made anew whose keys are left."""
        count = self._conn.execute(
            "SELECT count(DISTINCT coalesce(lineage, '')) FROM data_keys WHERE scope = ?",
            (scope,),
        ).get
        return int(count) > 1 or self._was_erased(scope, None)

    def _was_erased(self, scope: str, lineage: str | None) -> bool:
        """Whether the keys of ``lineage`` of ``scope`` were erased here; for no lineage,
        whether any key of the scope was (an erasure destroys those with none too)."""
        if lineage is None:
            found = self._conn.execute("SELECT 1 FROM erased WHERE scope = ?", (scope,))
        else:
            found = self._conn.execute(
                "SELECT 1 FROM erased WHERE scope = ? AND lineage = ?", (scope, lineage)
            )
        return found.fetchone() is not None

    def _unwrap_data_key(
        self, key_id: str, scope: str, nonce: bytes, wrapped: bytes, lineage: str | None = None
    ) -> bytes:
        try:
            aad = data_key_aad(key_id, scope, lineage)
            key = AESGCM(self._store_key).decrypt(nonce, wrapped, aad)
        except InvalidTag as exc:
            raise KeyRingError(
                f"data key {key_id} of {scope} does not open: it was altered"
            ) from exc
        self._cache[key_id] = key
        return key

    def _wrap_with_passphrase(self, passphrase: str, params: Argon2Params) -> None:
        salt = secrets.token_bytes(16)
        self._wrap("passphrase", stretch(passphrase, salt, params), params=params, salt=salt)

    def _wrap_with_key_file(self, path: Path) -> None:
        if not path.exists():
            # On the disk before the ring is locked by it: a key file lost in a power
            # cut would lock the ring for good. Of processes making it at once, one
            # writes it and the others take that one.
            text = base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode() + "\n"
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                create_text(path, text)
            except OSError as exc:
                raise KeyRingError(f"cannot write the key file {path}: {exc}") from exc
        self._wrap("key file", read_key_file(path))

    def _wrap(
        self,
        kind: str,
        kek: bytes,
        *,
        params: Argon2Params | None = None,
        salt: bytes | None = None,
    ) -> None:
        wrap_id = new_id()
        nonce = secrets.token_bytes(_NONCE_BYTES)
        wrapped = AESGCM(kek).encrypt(nonce, self._store_key, wrap_aad(wrap_id))
        self._conn.execute(
            "INSERT INTO wraps VALUES (?, ?, ?, ?, ?, ?, ?)",
            (wrap_id, kind, salt, params.text() if params else None, nonce, wrapped, now()),
        )
