"""Sharing a key ring with the other devices of its store, through the keys channel.

What travels is wrapped: the store key wrapped by the passphrase (a ``wrap`` item) and
each data key wrapped by the store key (a ``data`` item), the wrapped bytes with what
opening them needs (salt, stretching, nonce) in a base64 JSON blob. A device joins with
the passphrase (:func:`join`); devices take each other's data keys (:func:`absorb`) and
destroy the ones another device erased. A data key's blob names its lineage
(:mod:`pjai.security.keys`) when it has one: a device of an older PJai reads the blob of
a key without one as before.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pjai.errors import KeyRingError
from pjai.security.keyfile import FORMAT, SCHEMA, connect, now
from pjai.security.keys import KeyRing
from pjai.security.locks import (
    Argon2Params,
    blob,
    check_passphrase,
    fingerprint,
    plain_code,
    stretch,
    wrap_aad,
)

__all__ = [
    "MAX_WRAPS_TRIED",
    "Absorbed",
    "Item",
    "absorb",
    "deletion_check",
    "deletion_proof",
    "export_items",
    "foreign",
    "join",
]

log = logging.getLogger(__name__)

Item = dict[str, str]
"""A key as the keys channel carries it: ``id``, ``kind``, ``scope``, ``blob``; and,
put by a device, ``check`` (:func:`deletion_check`)."""


def _pack(**parts: Any) -> str:
    coded = {
        k: base64.b64encode(v).decode() if isinstance(v, bytes) else v for k, v in parts.items()
    }
    return base64.b64encode(json.dumps(coded).encode()).decode()


def _unpack(text: str, *needed: str) -> dict[str, Any]:
    """The parts of a shared key's blob; :class:`~pjai.errors.KeyRingError` unless it
    has each of ``needed`` (``salt``, ``nonce`` and ``wrapped`` as bytes, others text)."""
    try:
        parts = json.loads(base64.b64decode(text, validate=True))
        unpacked = {k: base64.b64decode(v) if k in _BYTES else v for k, v in parts.items()}
    except (ValueError, TypeError, AttributeError, RecursionError) as exc:
        raise KeyRingError(f"a shared key is not readable: {exc}") from exc
    for name in needed:
        if not isinstance(unpacked.get(name), bytes if name in _BYTES else str):
            raise KeyRingError(f"a shared key is not readable: it has no {name}")
    nonce = unpacked.get("nonce")
    if nonce is not None and not 8 <= len(nonce) <= 128:  # what AES-GCM takes
        raise KeyRingError(f"a shared key is not readable: a nonce of {len(nonce)} bytes")
    return unpacked


_BYTES = ("salt", "nonce", "wrapped")

MAX_WRAPS_TRIED = 16
"""How many of a store's shared wraps of one lock a device joining it tries at most."""


def export_items(ring: KeyRing) -> list[Item]:
    """The ring's passphrase and recovery code wraps and its data keys, as the keys
    channel carries them, each with the check of its deletion (:func:`deletion_check`)."""
    with ring._guard():
        wraps = ring._conn.execute(
            "SELECT id, kind, salt, params, nonce, wrapped FROM wraps "
            "WHERE kind IN ('passphrase', 'recovery code')"
        ).fetchall()
        data = ring._conn.execute(
            "SELECT id, scope, nonce, wrapped, lineage FROM data_keys"
        ).fetchall()
    items = [
        {"id": str(i), "kind": "wrap", "scope": "",
         "blob": _pack(lock=str(kind), salt=blob(salt), params=str(params), nonce=blob(n),
                       wrapped=blob(w))}
        for i, kind, salt, params, n, w in wraps
    ]  # fmt: skip
    items += [
        {"id": str(i), "kind": "data", "scope": str(scope),
         "blob": _pack(nonce=blob(n), wrapped=blob(w), **_lineage(lineage))}
        for i, scope, n, w, lineage in data
    ]  # fmt: skip
    for item in items:  # what the server checks the key's deletion against
        item["check"] = deletion_check(ring, item["id"])
    return items


def _lineage(lineage: object) -> dict[str, str]:
    """A data key's lineage as its blob carries it: none for a key without one, so that
    a device of an older PJai reads the blob as before."""
    return {} if lineage is None else {"lineage": str(lineage)}


def deletion_check(ring: KeyRing, key_id: str) -> str:
    """The SHA-256 of :func:`deletion_proof` (hex), which a key is shared with: the
    sync server checks a deletion against it without learning the proof first."""
    return hashlib.sha256(deletion_proof(ring, key_id).encode()).hexdigest()


def deletion_proof(ring: KeyRing, key_id: str) -> str:
    """The proof that a device of the store destroyed ``key_id``: made with the store
    key, so that neither the server nor a token holder can forge one."""
    return ring.proof("pjai key deleted", key_id)


@dataclass(frozen=True, slots=True)
class Absorbed:
    """What :func:`absorb` did."""

    came: int
    """Data keys taken."""
    erased: list[str]
    """Scopes (personas) destroyed here because another device erased them."""
    refused: int
    """Items or deletions ignored: unreadable, altered, unproven, or of an erased scope."""


def absorb(
    ring: KeyRing,
    items: list[Item],
    deleted: list[Item],
    *,
    before_erasing: Callable[[str], object] | None = None,
) -> Absorbed:
    """Take the data keys ``items`` holds that the ring lacks (each checked to open with
    the store key, and bound to its scope and lineage; none of a lineage erased here),
    make the newest key of the current key's lineage of each scope the one new events
    use (the newest of all when none is current here), and destroy the lineages of the
    keys ``deleted`` names whose proof holds (erased on another device, with the keys
    of their scopes that have no lineage: :meth:`KeyRing.erase`), each scope after
    ``before_erasing(scope)`` returned (the caller's note that what the scope's keys
    opened is to be rewritten: once they are gone nothing else tells it). A key of a
    persona given an erased persona's id again has a lineage of its own: it is taken,
    and the erasure's deletions do not reach it."""
    came = refused = 0
    touched: set[str] = set()
    with ring._guard():
        known = {str(r[0]) for r in ring._conn.execute("SELECT id FROM data_keys")}
        gone: dict[str, set[str | None]] = {}
        for scope, lineage in ring._conn.execute("SELECT scope, lineage FROM erased"):
            gone.setdefault(str(scope), set()).add(None if lineage is None else str(lineage))
        gone_ids = {str(r[0]) for r in ring._conn.execute("SELECT key_id FROM erased")}
        for item in items:
            if item.get("kind") != "data" or item.get("id") in known | gone_ids:
                continue
            try:
                key_id, scope = str(item["id"]), str(item["scope"])
                parts = _unpack(str(item["blob"]), "nonce", "wrapped")
                lineage = parts.get("lineage")
                if lineage is not None and not isinstance(lineage, str):
                    raise KeyRingError(f"a shared key is not readable: lineage {lineage!r}")
                # One with no lineage goes with any erasure of its scope.
                if scope in gone and (lineage is None or lineage in gone[scope]):
                    raise KeyRingError(f"{scope} was erased here")
                ring._unwrap_data_key(key_id, scope, parts["nonce"], parts["wrapped"], lineage)
            except (KeyRingError, KeyError, TypeError) as exc:
                log.warning("a shared key was not taken: %s", exc)
                refused += 1
                continue
            # A listing may name a key twice, and another process of this directory
            # may take the same key meanwhile, or erase its lineage: a key already here,
            # or of a lineage erased, is not taken.
            known.add(key_id)
            with ring._transaction():
                ring._conn.execute(
                    "INSERT OR IGNORE INTO data_keys "
                    "(id, scope, nonce, wrapped, current, created_at, lineage) "
                    "SELECT ?, ?, ?, ?, 0, ?, ? WHERE NOT EXISTS (SELECT 1 FROM erased "
                    "WHERE key_id = ? OR (scope = ? AND (? IS NULL OR lineage = ?)))",
                    (key_id, scope, parts["nonce"], parts["wrapped"], now(), lineage,
                     key_id, scope, lineage, lineage),
                )  # fmt: skip
                if not ring._conn.changes():
                    ring._cache.pop(key_id, None)  # opened to check it, not taken
                    continue
            came += 1
            touched.add(scope)
        for scope in touched:  # ids are time-ordered (UUIDv7): the newest wins
            with ring._transaction():
                _newest_current(ring, scope)
            ring._current.pop(scope, None)
        erasing: dict[str, set[str]] = {}
        for deletion in deleted:
            key_id, proof = str(deletion.get("id", "")), str(deletion.get("proof", ""))
            # Compared as bytes: a proof of any text is refused, not an error.
            if not hmac.compare_digest(proof.encode(), deletion_proof(ring, key_id).encode()):
                refused += 1
                continue
            # The key's lineage, if it is here; and the one it started, whose first key
            # it was (a rotated key of it may be here without it).
            rows = ring._conn.execute(
                "SELECT scope, lineage FROM data_keys WHERE id = ? "
                "UNION SELECT scope, lineage FROM data_keys WHERE lineage = ?",
                (key_id, key_id),
            ).fetchall()
            for scope, lineage in rows:
                lineages = erasing.setdefault(str(scope), set())
                if lineage is not None:
                    lineages.add(str(lineage))
            # A recovery code used up on another device opens nothing here either (a
            # passphrase wrap stays: it is this device's own lock).
            with ring._transaction():
                ring._conn.execute(
                    "DELETE FROM wraps WHERE id = ? AND kind = 'recovery code'", (key_id,)
                )
    for scope, lineages in sorted(erasing.items()):
        if before_erasing is not None:
            before_erasing(scope)
        ring.erase(scope, lineages)
    return Absorbed(came, sorted(erasing), refused)


def foreign(ring: KeyRing, items: list[Item], ids: Collection[str]) -> dict[str, str]:
    """Of ``ids`` (data keys held here), those ``items`` (a server's listing) holds in a
    wrap that does not open with the store key, each with its scope here: a key of that
    id put by someone outside the store (a token holder, before this device put its
    own), which a device lacking the key would be given instead of it."""
    found: dict[str, str] = {}
    with ring._guard():
        for item in items:
            key_id = str(item.get("id"))
            if key_id not in ids or item.get("kind") != "data":
                continue
            row = ring._conn.execute(
                "SELECT scope, lineage FROM data_keys WHERE id = ?", (key_id,)
            ).fetchone()
            if row is None:  # erased meanwhile
                continue
            scope, lineage = str(row[0]), None if row[1] is None else str(row[1])
            try:  # bound to its id, scope and lineage here: another wrap does not open
                parts = _unpack(str(item.get("blob")), "nonce", "wrapped")
                ring._unwrap_data_key(key_id, scope, parts["nonce"], parts["wrapped"], lineage)
            except KeyRingError:
                found[key_id] = scope
    return found


def _newest_current(ring: KeyRing, scope: str) -> None:
    """Make the newest key of ``scope``'s current lineage its current one (a rotation on
    another device reaches this one), or the newest of all when none is current: a
    key taken for a persona given an erased persona's id does not become the one the
    erased persona's events are sealed with here, nor the other way round."""
    row = ring._conn.execute(
        "SELECT lineage FROM data_keys WHERE scope = ? AND current = 1", (scope,)
    ).fetchone()
    if row is None:
        newest = "SELECT max(id) FROM data_keys WHERE scope = ?"
        args: tuple[object, ...] = (scope, scope)
    else:
        newest = "SELECT max(id) FROM data_keys WHERE scope = ? AND lineage IS ?"
        args = (scope, row[0], scope)
    ring._conn.execute(f"UPDATE data_keys SET current = (id = ({newest})) WHERE scope = ?", args)


def join(
    path: Path,
    items: list[Item],
    passphrase: str,
    *,
    recovery_code: str | None = None,
    params: Argon2Params | None = None,
) -> KeyRing:
    """A new key ring at ``path`` made from a store's shared keys, unlocked by its
    ``passphrase``; or, with a ``recovery_code``, by that one-time code, which is then
    used up (:meth:`KeyRing.recover`: retired, so that the next key exchange deletes
    it everywhere) and ``passphrase`` becomes this device's new one.
    :class:`~pjai.errors.KeyRingError` if no wrap opens."""
    if path.exists():
        raise KeyRingError(f"{path} exists: this data directory has a key ring already")
    if recovery_code is not None:
        check_passphrase(passphrase)  # the new one, before anything is made
    lock = "passphrase" if recovery_code is None else "recovery code"
    secret = passphrase if recovery_code is None else plain_code(recovery_code)
    tried = 0
    for item in (i for i in items if i.get("kind") == "wrap"):
        try:
            wrap_id = str(item["id"])
            parts = _unpack(item["blob"], "salt", "params", "nonce", "wrapped")
            if parts.get("lock", "passphrase") != lock:
                continue
            if tried == MAX_WRAPS_TRIED:
                # Each try costs a stretching of up to seconds: a server listing many
                # wraps must not keep this device busy for hours.
                log.warning(
                    "the store lists more than %d shared wraps; the rest were not tried",
                    MAX_WRAPS_TRIED,
                )
                break
            tried += 1
            params = Argon2Params.parse(parts["params"])
            params.check_shared()
            kek = stretch(secret, parts["salt"], params)
        except (KeyRingError, KeyError, ValueError) as exc:
            log.warning("a shared key ring wrap was not tried: %s", exc)
            continue
        try:
            store_key = AESGCM(kek).decrypt(parts["nonce"], parts["wrapped"], wrap_aad(wrap_id))
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
                    "INSERT INTO wraps VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (wrap_id, lock, parts["salt"], parts["params"], parts["nonce"],
                     parts["wrapped"], now()),
                )  # fmt: skip
        finally:
            conn.close()
        try:
            if recovery_code is None:
                ring = KeyRing.unlock(path, passphrase=passphrase)
            else:
                ring = KeyRing.recover(path, recovery_code, passphrase, params)
        except BaseException:
            path.unlink(missing_ok=True)  # no half-made ring left behind
            raise
        absorb(ring, items, [])
        return ring
    given = "passphrase" if recovery_code is None else "recovery code"
    raise KeyRingError(f"the {given} given opens none of the store's shared keys")
