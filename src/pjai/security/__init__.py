"""Security and privacy: the key ring and field encryption (docs/security.md).

:class:`KeyRing` keeps a data directory's store key, locked by a passphrase, a key
file or a one-time recovery code, and a data key per persona; :class:`FieldCodec`
encrypts the sensitive fields of events with them, through the schema's codec seam.
"""

from __future__ import annotations

from pjai.security.fields import CODEC_NAME, FieldCodec
from pjai.security.keys import KEYS_FILE, STORE_SCOPE, Argon2Params, ErasedKey, KeyRing, fingerprint

__all__ = [
    "CODEC_NAME",
    "KEYS_FILE",
    "STORE_SCOPE",
    "Argon2Params",
    "ErasedKey",
    "FieldCodec",
    "KeyRing",
    "fingerprint",
]
