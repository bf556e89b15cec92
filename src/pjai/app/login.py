"""The web app's passphrase: set with ``pjai web passphrase``, asked for by the app when
it listens on anything but loopback. There is no default: an app reachable from other
machines does not start until a passphrase is set.

The file keeps a scrypt hash of the passphrase with its salt, never the passphrase.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from pjai.errors import ConfigError
from pjai.files import read_json
from pjai.hybrid.fresh import opening
from pjai.schema.limits import encoding_problem
from pjai.sync.server.tokens import PREFIX

__all__ = ["MIN_LENGTH", "PASSPHRASE_FILE", "Passphrase"]

PASSPHRASE_FILE = "web-passphrase.json"
"""The hash of the web app's passphrase, in the data directory."""

MIN_LENGTH = 12
"""The shortest passphrase accepted."""

_N, _R, _P = 2**14, 8, 1  # scrypt's cost: about 50 ms and 16 MB per check


@dataclass(frozen=True, slots=True)
class Passphrase:
    """The passphrase file of one data directory."""

    path: Path

    @classmethod
    def of(cls, data_dir: Path) -> Passphrase:
        """The passphrase file in ``data_dir``."""
        return cls(Path(data_dir) / PASSPHRASE_FILE)

    @property
    def is_set(self) -> bool:
        """Whether a passphrase has been set."""
        return self.path.exists()

    def version(self) -> str | None:
        """What tells the passphrase set now from any set before or after (a digest of
        its file, whose salt is new each time); ``None`` when none is set."""
        try:
            return hashlib.sha256(self.path.read_bytes()).hexdigest()
        except FileNotFoundError:
            return None

    def set(self, passphrase: str) -> None:
        """Keep (the hash of) ``passphrase``, replacing any earlier one, atomically.
        Refused at once while an import or a backup goes into the data directory
        (:func:`~pjai.hybrid.fresh.opening`), which would take the file for its own."""
        if (problem := encoding_problem(passphrase)) is not None:
            raise ConfigError(f"the passphrase {problem}; give it in UTF-8")
        if len(passphrase) < MIN_LENGTH:
            raise ConfigError(
                f"the passphrase must have at least {MIN_LENGTH} characters, got {len(passphrase)}"
            )
        if passphrase.startswith(PREFIX):
            # The login form takes what begins so for an access token: such a
            # passphrase would never be checked, and could never sign anyone in.
            raise ConfigError(
                f"the passphrase cannot begin with {PREFIX!r}, which marks an access token "
                "at the login form; choose another"
            )
        salt = secrets.token_bytes(16)
        record = {
            "scrypt": {"n": _N, "r": _R, "p": _P},
            "salt": salt.hex(),
            "hash": _hash(passphrase, salt, _N, _R, _P).hex(),
        }
        with opening(self.path.parent):  # makes the directory if missing
            partial = self.path.with_name(self.path.name + ".new")
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as file:
                json.dump(record, file)
                file.flush()
                os.fsync(file.fileno())
            partial.replace(self.path)

    def clear(self) -> bool:
        """Forget the passphrase; whether there was one."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True

    def check(self, passphrase: str) -> bool:
        """Whether ``passphrase`` is the one set (never, when none is)."""
        try:
            record = read_json(self.path)
            cost = record["scrypt"]
            salt = bytes.fromhex(record["salt"])
            expected = bytes.fromhex(record["hash"])
            if encoding_problem(passphrase) is not None:
                return False  # not text: not the passphrase set, which is
            found = _hash(passphrase, salt, cost["n"], cost["r"], cost["p"])
        except FileNotFoundError:
            return False
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"{self.path} is damaged ({exc}); set the passphrase again with "
                "`pjai web passphrase`"
            ) from exc
        return hmac.compare_digest(found, expected)


def _hash(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(passphrase.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
