"""What an encrypted data directory is opened with: its key ring, unlocked with what
the environment gives (a passphrase, a key file) or with the store key kept in the OS
keyring (:func:`unlock_key_ring`), and whether its SQL primary keeps the sensitive
columns sealed (:func:`sql_sealed`). :class:`~pjai.app.DataDir` asks, and shares the
ring it unlocked with everything it opens."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pjai.errors import ConfigError, KeyRingError
from pjai.hybrid.flags import parse_bool
from pjai.schema.limits import encoding_problem
from pjai.security import KeyRing
from pjai.security.keys import store_fingerprint
from pjai.security.oskeyring import recall
from pjai.sql.shards import data_dir_urls

__all__ = ["KEY_FILE_ENV", "PASSPHRASE_ENV", "SQL_SEALED_ENV", "sql_sealed", "unlock_key_ring"]

PASSPHRASE_ENV = "PJAI_PASSPHRASE"
"""The environment variable that holds an encrypted directory's passphrase."""

KEY_FILE_ENV = "PJAI_KEY_FILE"
"""The environment variable that names an encrypted directory's key file."""

SQL_SEALED_ENV = "PJAI_SQL_SEALED"
"""Whether the SQL primary keeps the sensitive columns sealed (:func:`sql_sealed`)."""


def unlock_key_ring(directory: Path, keys_path: Path, environ: Mapping[str, str] | None) -> KeyRing:
    """The key ring ``keys_path`` of the data directory ``directory``, unlocked as
    :meth:`pjai.app.DataDir.key_ring` says (``environ`` stands in for the process
    environment)."""
    environ = os.environ if environ is None else environ
    passphrase, key_file = environ.get(PASSPHRASE_ENV), environ.get(KEY_FILE_ENV)
    for name, value in ((PASSPHRASE_ENV, passphrase), (KEY_FILE_ENV, key_file)):
        if value is not None and (problem := encoding_problem(value)) is not None:
            raise KeyRingError(f"{name} {problem}; give it in UTF-8")
    if passphrase is None and key_file is None:
        if recall(store_fingerprint(keys_path)) is None:
            raise KeyRingError(
                f"{directory} is encrypted: give its passphrase in {PASSPHRASE_ENV} or "
                f"its key file's path in {KEY_FILE_ENV} (or keep its key in the OS "
                "keyring: `pjai security remember`)"
            )
        return KeyRing.unlock(keys_path, os_keyring=True)
    return KeyRing.unlock(keys_path, passphrase=passphrase, key_file=key_file)


def sql_sealed(directory: Path, environ: Mapping[str, str] | None, *, encrypted: bool) -> bool:
    """Whether the SQL primary of the data directory ``directory`` (``encrypted`` or
    not) keeps the sensitive columns sealed, as :meth:`pjai.app.DataDir.sql_sealed`
    says."""
    given = os.environ if environ is None else environ
    raw = given.get(SQL_SEALED_ENV, "auto").strip().lower()
    urls = data_dir_urls(directory, environ)
    shared = all(url.startswith("postgresql") for url in urls)
    if raw == "auto":
        return encrypted and shared
    wanted = parse_bool(raw, SQL_SEALED_ENV)
    if wanted and not encrypted:
        raise ConfigError(
            f"{SQL_SEALED_ENV}=true needs an encrypted data directory (`pjai security "
            "init`): the columns are sealed with its keys"
        )
    if wanted and not shared:
        raise ConfigError(
            f"{SQL_SEALED_ENV}=true is for a PostgreSQL primary; an SQLite primary is a "
            "file on this device, plaintext like the store (set it to auto or false)"
        )
    return wanted
