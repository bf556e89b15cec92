"""The locks on a store key: a passphrase (Argon2id), a key file, a recovery code.

Each lock is a key-encryption key that wraps the store key with AES-256-GCM, bound to
the lock's row id; :func:`open_store_key` tries the locks it is given the secret of.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import apsw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from pjai.errors import KeyRingError

__all__ = [
    "KEY_BYTES",
    "NONCE_BYTES",
    "Argon2Params",
    "blob",
    "check_passphrase",
    "fingerprint",
    "open_store_key",
    "plain_code",
    "read_key_file",
    "stretch",
    "wrap_aad",
]

KEY_BYTES = 32

NONCE_BYTES = 12
"""The nonce of each key a ring wraps (AES-256-GCM)."""

MAX_ITERATIONS, MAX_LANES, MAX_MEMORY_KIB = 10, 16, 256 * 1024
"""The most stretching a wrap shared through the sync server may ask for."""


@dataclass(frozen=True, slots=True)
class Argon2Params:
    """How hard a passphrase is stretched (Argon2id). The defaults follow RFC 9106's
    second recommendation (64 MiB, 3 passes); tests may ask for less."""

    iterations: int = 3
    lanes: int = 4
    memory_kib: int = 64 * 1024

    def text(self) -> str:
        """As stored beside the salt."""
        return f"argon2id:{self.iterations}:{self.lanes}:{self.memory_kib}"

    @classmethod
    def parse(cls, text: str) -> Argon2Params:
        """What :meth:`text` wrote."""
        try:
            kind, iterations, lanes, memory = text.split(":")
            params = cls(int(iterations), int(lanes), int(memory))
        except ValueError as exc:
            raise KeyRingError(f"the key ring's stretching {text!r} is not readable") from exc
        if kind != "argon2id":
            raise KeyRingError(f"unknown passphrase stretching {kind!r} in the key ring")
        return params

    def check_shared(self) -> None:
        """Refuse stretching that a wrap from the sync server asks for beyond what a
        device should spend on trying it (PJai writes 3 passes, 4 lanes, 64 MiB)."""
        if not (
            1 <= self.iterations <= MAX_ITERATIONS
            and 1 <= self.lanes <= MAX_LANES
            and 8 * self.lanes <= self.memory_kib <= MAX_MEMORY_KIB
        ):
            raise KeyRingError(
                f"the shared passphrase stretching {self.text()!r} is out of bounds (at "
                f"most {MAX_ITERATIONS} passes, {MAX_LANES} lanes, "
                f"{MAX_MEMORY_KIB // 1024} MiB)"
            )


def blob(value: object) -> bytes:
    """A BLOB column's value as bytes (a key ring file altered by hand may hold text)."""
    if not isinstance(value, bytes):
        raise KeyRingError("the key ring holds a value that is not bytes: it was altered")
    return value


def fingerprint(key: bytes) -> str:
    """A key's fingerprint: names it in proofs and reports without revealing it."""
    return hashlib.sha256(b"pjai key fingerprint\x00" + key).hexdigest()[:16]


def stretch(passphrase: str, salt: bytes, params: Argon2Params) -> bytes:
    kdf = Argon2id(
        salt=salt,
        length=KEY_BYTES,
        iterations=params.iterations,
        lanes=params.lanes,
        memory_cost=params.memory_kib,
    )
    return kdf.derive(passphrase_bytes(passphrase))


def passphrase_bytes(passphrase: str) -> bytes:
    """``passphrase`` in UTF-8; :class:`KeyRingError` if it is not text (bytes that were
    not UTF-8, read from a terminal, a file or the environment)."""
    try:
        return passphrase.encode()
    except UnicodeEncodeError as exc:
        raise KeyRingError(
            f"the passphrase is not UTF-8 text (character {exc.start + 1} is not); give it in UTF-8"
        ) from None


def check_passphrase(passphrase: str) -> None:
    passphrase_bytes(passphrase)
    if len(passphrase) < 12:
        raise KeyRingError("a passphrase needs at least 12 characters")


def read_key_file(path: Path) -> bytes:
    """The key in the key file ``path``: 32 bytes, as they are or as base64 text (the
    form PJai writes). A file other users can read is refused."""
    try:
        mode = path.stat().st_mode
        if os.name == "posix" and mode & 0o077:
            raise KeyRingError(
                f"the key file {path} can be read by other users (mode {oct(mode & 0o777)}): "
                f"`chmod 600 {path}`, then try again"
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise KeyRingError(f"cannot read the key file {path}: {exc}") from exc
    if len(raw) == KEY_BYTES:
        return raw  # base64 text of a key is longer: these are the key's own bytes
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except ValueError as exc:  # binascii.Error is a ValueError
        raise KeyRingError(f"{path} is not a PJai key file ({_KEY_FILE_FORM})") from exc
    if len(key) != KEY_BYTES:
        raise KeyRingError(f"{path} is not a PJai key file ({_KEY_FILE_FORM})")
    return key


_KEY_FILE_FORM = f"{KEY_BYTES} bytes, or their base64 text"


def wrap_aad(wrap_id: str) -> bytes:
    return b"pjai store key\x00" + wrap_id.encode()


def plain_code(code: str) -> str:
    """A recovery code as stretched: upper case, without the dashes and spaces."""
    return "".join(code.split()).replace("-", "").upper()


def open_store_key(
    conn: apsw.Connection,
    expected: str,
    *,
    passphrase: str | None,
    key_file: str | Path | None,
    recovery_code: str | None,
) -> bytes:
    """The store key, unwrapped by the first lock whose secret is given and opens it
    (checked against its fingerprint ``expected``); :class:`~pjai.errors.KeyRingError`
    says what did not open. A recovery code is removed by the caller, with the new
    passphrase it makes (:meth:`KeyRing.recover`)."""
    rows = conn.execute("SELECT id, kind, salt, params, nonce, wrapped FROM wraps").fetchall()
    # A passphrase is tried before a key file: a key file that cannot be read then
    # does not stop a right passphrase.
    rows.sort(key=lambda row: str(row[1]) == "key file")
    kinds = {str(row[1]) for row in rows}
    tried: list[str] = []
    for wrap_id, kind, salt, params, nonce, wrapped in rows:
        kek: bytes | None = None
        if kind == "passphrase" and passphrase is not None:
            kek = stretch(passphrase, blob(salt), Argon2Params.parse(str(params)))
        elif kind == "key file" and key_file is not None:
            kek = read_key_file(Path(key_file))
        elif kind == "recovery code" and recovery_code is not None:
            code = plain_code(recovery_code)
            kek = stretch(code, blob(salt), Argon2Params.parse(str(params)))
        if kek is None:
            continue
        tried.append(str(kind))
        try:
            store_key = AESGCM(kek).decrypt(blob(nonce), blob(wrapped), wrap_aad(str(wrap_id)))
        except InvalidTag:
            continue
        if fingerprint(store_key) != expected:
            raise KeyRingError("the key ring's store key does not match its fingerprint")
        return store_key
    if not tried:
        offered = ", ".join(sorted(kinds)) or "nothing"
        raise KeyRingError(f"the key ring is locked: unlock it with its {offered}")
    raise KeyRingError(f"the {' or '.join(tried)} given does not unlock this key ring")
