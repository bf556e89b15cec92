"""Sharing a key ring with the other devices of its store, through the keys channel.

What travels is wrapped: the store key wrapped by the passphrase (a ``wrap`` item) and
each data key wrapped by the store key (a ``data`` item), the wrapped bytes with what
opening them needs (salt, stretching, nonce) in a base64 JSON blob. A device joins with
the passphrase (:func:`join`); devices take each other's data keys (:func:`absorb`) and
destroy the ones another device erased.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pjai.errors import KeyRingError
from pjai.security.keyfile import FORMAT, SCHEMA, connect, now
from pjai.security.keys import KeyRing
from pjai.security.locks import Argon2Params, blob, fingerprint, stretch, wrap_aad

__all__ = ["absorb", "export_items", "join"]

Item = dict[str, str]
"""A key as the keys channel carries it: ``id``, ``kind``, ``scope``, ``blob``."""


def _pack(**parts: Any) -> str:
    coded = {
        k: base64.b64encode(v).decode() if isinstance(v, bytes) else v for k, v in parts.items()
    }
    return base64.b64encode(json.dumps(coded).encode()).decode()


def _unpack(text: str) -> dict[str, Any]:
    try:
        parts = json.loads(base64.b64decode(text, validate=True))
        return {k: base64.b64decode(v) if k in ("salt", "nonce", "wrapped") else v
                for k, v in parts.items()}  # fmt: skip
    except (ValueError, TypeError, AttributeError) as exc:
        raise KeyRingError(f"a shared key is not readable: {exc}") from exc


def export_items(ring: KeyRing) -> list[Item]:
    """The ring's passphrase wraps and data keys, as the keys channel carries them."""
    with ring._lock:
        wraps = ring._conn.execute(
            "SELECT id, salt, params, nonce, wrapped FROM wraps WHERE kind = 'passphrase'"
        ).fetchall()
        data = ring._conn.execute("SELECT id, scope, nonce, wrapped FROM data_keys").fetchall()
    items = [
        {"id": str(i), "kind": "wrap", "scope": "",
         "blob": _pack(salt=blob(salt), params=str(params), nonce=blob(n), wrapped=blob(w))}
        for i, salt, params, n, w in wraps
    ]  # fmt: skip
    items += [
        {"id": str(i), "kind": "data", "scope": str(scope),
         "blob": _pack(nonce=blob(n), wrapped=blob(w))}
        for i, scope, n, w in data
    ]  # fmt: skip
    return items


def absorb(ring: KeyRing, items: list[Item], deleted: list[str]) -> tuple[int, int]:
    """Take the data keys ``items`` holds that the ring lacks (each checked to open with
    the store key), and destroy the scopes of the keys ``deleted`` names (erased on
    another device). Returns how many keys came, and how many scopes were erased."""
    came = 0
    with ring._lock:
        known = {str(r[0]) for r in ring._conn.execute("SELECT id FROM data_keys")}
        erased = {str(r[0]) for r in ring._conn.execute("SELECT key_id FROM erased")}
        for item in items:
            if item["kind"] != "data" or item["id"] in known or item["id"] in erased:
                continue
            parts = _unpack(item["blob"])
            ring._unwrap_data_key(item["id"], item["scope"], parts["nonce"], parts["wrapped"])
            has_current = ring._conn.execute(
                "SELECT 1 FROM data_keys WHERE scope = ? AND current = 1", (item["scope"],)
            ).fetchone()
            with ring._transaction():
                ring._conn.execute(
                    "INSERT INTO data_keys VALUES (?, ?, ?, ?, ?, ?)",
                    (item["id"], item["scope"], parts["nonce"], parts["wrapped"],
                     0 if has_current else 1, now()),
                )  # fmt: skip
            came += 1
        scopes = {
            str(r[0])
            for key_id in deleted
            for r in ring._conn.execute("SELECT scope FROM data_keys WHERE id = ?", (key_id,))
        }
    for scope in sorted(scopes):
        ring.erase(scope)
    return came, len(scopes)


def join(path: Path, items: list[Item], passphrase: str) -> KeyRing:
    """A new key ring at ``path`` made from a store's shared keys, unlocked by its
    ``passphrase``; :class:`~pjai.errors.KeyRingError` if no wrap opens with it."""
    if path.exists():
        raise KeyRingError(f"{path} exists: this data directory has a key ring already")
    for item in (i for i in items if i["kind"] == "wrap"):
        parts = _unpack(item["blob"])
        kek = stretch(passphrase, parts["salt"], Argon2Params.parse(parts["params"]))
        try:
            store_key = AESGCM(kek).decrypt(parts["nonce"], parts["wrapped"], wrap_aad(item["id"]))
        except InvalidTag:
            continue
        conn = connect(path)
        try:
            with conn:
                conn.execute(SCHEMA)
                conn.execute(
                    "INSERT INTO meta VALUES ('format', ?), ('store key', ?)",
                    (FORMAT, fingerprint(store_key)),
                )
                conn.execute(
                    "INSERT INTO wraps VALUES (?, 'passphrase', ?, ?, ?, ?, ?)",
                    (item["id"], parts["salt"], parts["params"], parts["nonce"],
                     parts["wrapped"], now()),
                )  # fmt: skip
        finally:
            conn.close()
        ring = KeyRing.unlock(path, passphrase=passphrase)
        absorb(ring, items, [])
        return ring
    raise KeyRingError("the passphrase given opens none of the store's shared keys")
