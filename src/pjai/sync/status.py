"""Where a sync client stands (:class:`SyncStatus`), as a UI or ``pjai sync status``
shows it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["SyncStatus"]


@dataclass(frozen=True, slots=True)
class SyncStatus:
    """Where the client stands, for a UI or ``pjai sync status``."""

    state: Literal["offline", "connecting", "online", "failed", "stopped"]
    server_head: int | None = None
    confirmed_head: int = 0
    pending: int = 0
    last_error: str | None = None
    backend_id: str | None = None
    reconnects: int = 0
    read_only: bool = False
    """The token may only pull: local changes stay pending."""

    @property
    def lag(self) -> int | None:
        """Events the server has that this store has not confirmed yet."""
        if self.server_head is None:
            return None
        return max(0, self.server_head - self.confirmed_head)

    @property
    def level(self) -> bool:
        """Online, nothing pending, nothing to pull: in step with the server as far as
        this client last heard (``wait_until(lambda s: s.level)``)."""
        return self.state == "online" and self.pending == 0 and self.lag == 0
