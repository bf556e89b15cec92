"""The store key's locks as a key ring keeps them: a passphrase, a key file, a one-time
recovery code (each a wrap of the store key, :mod:`pjai.security.locks`), and the OS
keyring. Changing a lock re-wraps the store key without touching data; a lock another
process changed meanwhile wins (:meth:`Wraps._changing`)."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import apsw
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pjai.errors import KeyRingError
from pjai.files import create_text
from pjai.schema.types import new_id
from pjai.security.keyfile import now
from pjai.security.locks import (
    KEY_BYTES,
    NONCE_BYTES,
    Argon2Params,
    check_passphrase,
    fingerprint,
    plain_code,
    read_key_file,
    stretch,
    wrap_aad,
)
from pjai.security.oskeyring import forget, recall, remember
from pjai.security.ringfile import RingFile, locked

__all__ = ["Wraps", "wrap_ids"]


def wrap_ids(conn: apsw.Connection) -> dict[str, frozenset[str]]:
    """The ids of the store key's locks, by kind."""
    found: dict[str, set[str]] = {}
    for wrap_id, kind in conn.execute("SELECT id, kind FROM wraps"):
        found.setdefault(str(kind), set()).add(str(wrap_id))
    return {kind: frozenset(ids) for kind, ids in found.items()}


class Wraps(RingFile):
    """The locks of a key ring's store key."""

    _seen: dict[str, frozenset[str]]
    """The locks as this ring found them (as they were read to unlock it): a change of
    them waits until no other process has changed them meanwhile (:meth:`_changing`)."""

    @locked
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

    @locked
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

    @locked
    def add_key_file(self, key_file: str | Path) -> None:
        """Let ``key_file`` (made if it does not exist) unlock the store key too."""
        with self._transaction():
            self._conn.execute("DELETE FROM wraps WHERE kind = 'key file'")
            self._wrap_with_key_file(Path(key_file))

    @locked
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

    @locked
    def locks(self) -> list[str]:
        """What can unlock the store key: ``passphrase``, ``key file``, ``recovery code``."""
        rows = self._conn.execute("SELECT kind FROM wraps ORDER BY kind").fetchall()
        return [str(kind) for (kind,) in rows]

    @property
    def store_key_fingerprint(self) -> str:
        """The store key's fingerprint."""
        return fingerprint(self._store_key)

    @contextmanager
    def _changing(self, kind: str) -> Iterator[None]:
        """A transaction that changes the locks, taken only while the locks of ``kind``
        are as this ring found them: another process that changed them meanwhile (a
        passphrase changed, a recovery code used or replaced) wins, and this change
        is refused rather than undo it."""
        with self._writing():
            if wrap_ids(self._conn).get(kind) != self._seen.get(kind):
                raise KeyRingError(
                    f"the key ring's {kind} was changed by another process since it was "
                    "opened here: open it again, with what unlocks it now"
                )
            yield
        self._seen = wrap_ids(self._conn)

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
        nonce = secrets.token_bytes(NONCE_BYTES)
        wrapped = AESGCM(kek).encrypt(nonce, self._store_key, wrap_aad(wrap_id))
        self._conn.execute(
            "INSERT INTO wraps VALUES (?, ?, ?, ?, ?, ?, ?)",
            (wrap_id, kind, salt, params.text() if params else None, nonce, wrapped, now()),
        )
