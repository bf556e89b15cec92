"""The installation's client id, kept in the data directory."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pjai.errors import ConfigError
from pjai.schema.types import new_id

__all__ = ["Identity"]


@dataclass(slots=True)
class Identity:
    """The client id events committed here carry, whichever side commits them."""

    path: Path
    client_id: str
    new: bool = False
    """The file was made now: the directory had not been used before."""

    @classmethod
    def load(cls, path: Path) -> Identity:
        """Read the identity file, creating it with a new client id if missing."""
        if path.exists():
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise ConfigError(f"{path} is not a PJai identity file: {exc}") from exc
            client_id = data.get("client_id") if isinstance(data, dict) else None
            if not isinstance(client_id, str) or not client_id:
                raise ConfigError(
                    f"{path} is not a PJai identity file: it needs a client_id (text)"
                )
            return cls(path, client_id)
        identity = cls(path, new_id(), new=True)
        identity.save()
        return identity

    def adopt(self, client_id: str) -> None:
        """Use the store's client id from now on (it was there first)."""
        if client_id != self.client_id:
            self.client_id = client_id
            self.save()

    def save(self) -> None:
        """Write the identity file atomically."""
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"client_id": self.client_id}) + "\n")
        temporary.replace(self.path)
