"""Encrypting a data directory's sensitive fields: making its key ring, unlocking it,
changing its locks, rotating a persona's key, and what it holds (docs/security.md)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pjai.app.datadir import DataDir
from pjai.app.sync import SyncLock
from pjai.errors import ConfigError, KeyRingError
from pjai.security import Argon2Params, KeyRing
from pjai.security.keys import store_fingerprint
from pjai.security.oskeyring import forget

__all__ = [
    "SecurityReport",
    "change_passphrase",
    "forget_key",
    "init_security",
    "new_recovery_code",
    "remember_key",
    "rotate_key",
    "security_status",
]


@dataclass(frozen=True, slots=True)
class SecurityReport:
    """Whether a directory is encrypted and, when its ring was unlocked, what it holds."""

    encrypted: bool
    unlocked: bool
    locks: list[str]
    """What can unlock the store key: passphrase, key file, recovery code."""
    store_key: str | None
    """The store key's fingerprint (never the key)."""
    data_keys: dict[str, int]
    """How many data keys each persona (or ``store``) has."""
    erased: int
    """How many data keys were destroyed by erasures."""
    sql_sealed: bool = False
    """Whether the SQL primary keeps the sensitive columns sealed (``PJAI_SQL_SEALED``)."""
    remembered: bool = False
    """Whether the OS keyring keeps the store key (``pjai security remember``)."""
    locked_because: str | None = None
    """Why the ring did not unlock, when it did not."""


def init_security(
    data_dir: DataDir,
    *,
    passphrase: str | None = None,
    key_file: Path | None = None,
    params: Argon2Params | None = None,
) -> SecurityReport:
    """Make the directory's key ring, locked by ``passphrase`` and/or ``key_file``: from
    now on the sensitive fields of new events are sealed. Events committed before stay
    as they were written. Refused if the directory has a ring already, and at once
    while an import or a backup goes into it (:meth:`~pjai.app.DataDir.writing`), or a
    sync runs on it (:class:`~pjai.app.sync.SyncLock`: its client would push sealed
    events without sharing their keys until it started again)."""
    with data_dir.writing(), _not_syncing(data_dir):
        if data_dir.encrypted:
            raise KeyRingError(f"{data_dir.path} is encrypted already ({data_dir.keys_path})")
        with KeyRing.create(
            data_dir.keys_path, passphrase=passphrase, key_file=key_file, params=params
        ) as ring:
            return _report(ring)


@contextmanager
def _not_syncing(data_dir: DataDir) -> Iterator[None]:
    # A sync that starts holds the directory (`writing`, held here) while it takes its
    # lock: with no lock file, none runs and none starts meanwhile.
    if not data_dir.sync_lock_path.exists():
        yield
        return
    try:
        lock = SyncLock(data_dir)
    except ConfigError as exc:
        raise ConfigError(f"{exc}; then turn encryption on, and start it again") from None
    with lock:
        yield


def security_status(data_dir: DataDir) -> SecurityReport:
    """What the key ring holds, if it unlocks with what the environment gives
    (``PJAI_PASSPHRASE``, ``PJAI_KEY_FILE``); else only whether there is one."""
    if not data_dir.encrypted:
        return SecurityReport(False, False, [], None, {}, 0)
    try:
        ring = data_dir.key_ring()
    except KeyRingError as exc:
        return SecurityReport(True, False, [], None, {}, 0, locked_because=str(exc))
    with ring:
        return _report(ring, sql_sealed=data_dir.sql_sealed())


def remember_key(data_dir: DataDir) -> SecurityReport:
    """Keep the directory's store key in the OS keyring (unlocking the ring with what
    the environment gives): from then on it opens on this device without the
    passphrase."""
    with data_dir.key_ring() as ring:
        ring.remember()
        return _report(ring, sql_sealed=data_dir.sql_sealed())


def forget_key(data_dir: DataDir) -> bool:
    """Remove the directory's store key from the OS keyring; whether it was there. The
    ring's fingerprint is read without unlocking it."""
    return forget(store_fingerprint(data_dir.keys_path))


def change_passphrase(
    data_dir: DataDir, passphrase: str, *, params: Argon2Params | None = None
) -> None:
    """Lock the store key with a new passphrase (unlocking it with what the environment
    gives); data and data keys stay as they are."""
    with data_dir.key_ring() as ring:
        ring.change_passphrase(passphrase, params)


def new_recovery_code(data_dir: DataDir, *, params: Argon2Params | None = None) -> str:
    """A new one-time recovery code for the store key (replacing an older one)."""
    with data_dir.key_ring() as ring:
        return ring.recovery_code(params)


def recover(
    data_dir: DataDir, recovery_code: str, passphrase: str, *, params: Argon2Params | None = None
) -> None:
    """Unlock the key ring with its one-time recovery code and lock it with a new
    passphrase instead of the old one (a forgotten passphrase, or a new device holding
    a copy of the ring); the code is used up."""
    if not data_dir.encrypted:
        raise KeyRingError(f"{data_dir.path} is not encrypted: there is nothing to recover")
    KeyRing.recover(data_dir.keys_path, recovery_code, passphrase, params).close()


def rotate_key(data_dir: DataDir, persona_id: str) -> str:
    """A new data key for the persona's future events; returns its id."""
    with data_dir.key_ring() as ring:
        return ring.rotate(persona_id)


def _report(ring: KeyRing, *, sql_sealed: bool = False) -> SecurityReport:
    return SecurityReport(
        encrypted=True,
        unlocked=True,
        locks=ring.locks(),
        store_key=ring.store_key_fingerprint,
        data_keys=ring.scopes(),
        erased=len(ring.erased()),
        sql_sealed=sql_sealed,
        remembered=ring.remembered,
    )
