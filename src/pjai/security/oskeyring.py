"""Keeping a store key in the OS keyring, so that a device opens its data directory
without typing the passphrase (``pjai security remember``).

The key is kept by the ``keyring`` library in whatever the system offers (the Secret
Service on Linux desktops, the macOS Keychain, the Windows Credential Locker), under the
service ``pjai`` and the name ``store key FINGERPRINT``: one entry per store, whatever
the data directory's path, checked against the ring's fingerprint when read. Anyone who
can read that keyring entry (the logged-in user) opens the store without the
passphrase; that is the trade made by remembering it.
"""

from __future__ import annotations

import base64
import binascii

from pjai.errors import KeyRingError
from pjai.security.locks import fingerprint

__all__ = ["SERVICE", "forget", "recall", "remember"]

SERVICE = "pjai"
"""The service name of PJai's entries in the OS keyring."""


def _name(store_fingerprint: str) -> str:
    return f"store key {store_fingerprint}"


def remember(store_key: bytes) -> None:
    """Keep ``store_key`` in the OS keyring; :class:`~pjai.errors.KeyRingError` if this
    system has none that works."""
    import keyring  # loads its backends only when asked
    from keyring.errors import KeyringError

    try:
        keyring.set_password(SERVICE, _name(fingerprint(store_key)), _encode(store_key))
    except KeyringError as exc:
        raise KeyRingError(f"no OS keyring to keep the key in here: {exc}") from exc


def recall(store_fingerprint: str) -> bytes | None:
    """The store key with this fingerprint from the OS keyring, or ``None`` (not kept
    there, no keyring on this system, or an entry that is not that key)."""
    import keyring
    from keyring.errors import KeyringError

    try:
        found = keyring.get_password(SERVICE, _name(store_fingerprint))
    except KeyringError:
        return None
    if found is None:
        return None
    try:
        key = base64.b64decode(found, validate=True)
    except (binascii.Error, ValueError):
        return None
    return key if fingerprint(key) == store_fingerprint else None


def forget(store_fingerprint: str) -> bool:
    """Remove the store key with this fingerprint from the OS keyring; whether it was
    there."""
    import keyring
    from keyring.errors import KeyringError, PasswordDeleteError

    try:
        keyring.delete_password(SERVICE, _name(store_fingerprint))
    except PasswordDeleteError:
        return False
    except KeyringError as exc:
        raise KeyRingError(f"cannot reach the OS keyring: {exc}") from exc
    return True


def _encode(key: bytes) -> str:
    return base64.b64encode(key).decode()
