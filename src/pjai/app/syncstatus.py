"""What a data directory's sync last saw: the status file a running client writes
(:func:`write_status`), read with the store by :func:`sync_status` whether or not a
client runs, and the local events the sync rejected (:func:`sync_conflicts`)."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from pjai.app.datadir import DataDir
from pjai.errors import ConfigError
from pjai.files import replace_text
from pjai.sync.client import SyncStatus
from pjai.sync.protocol import Peer

__all__ = [
    "PeerView",
    "RejectedEvent",
    "SyncReport",
    "sync_conflicts",
    "sync_status",
    "write_status",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PeerView:
    """Another instance working on the same store now, as the sync server last said."""

    name: str
    state: str
    client_id: str
    last_seen: str
    """The server's time of the last message from it (ISO 8601, UTC)."""
    detail: dict[str, str]

    def __str__(self) -> str:
        return f"{self.name} ({self.state}, seen {self.last_seen[11:19]} UTC)"


@dataclass(frozen=True, slots=True)
class SyncReport:
    """The sync of a data directory, from its store and the status file.

    ``state`` is the running client's state, or ``not running``; ``last_state`` the
    last one the status file recorded. ``in_step``: a client is online, this store has
    nothing pending and nothing to pull as far as the client last heard.
    """

    in_step: bool
    state: str
    last_state: str | None
    url: str | None
    store_id: str | None
    server_head: int | None
    confirmed_head: int
    pending: int
    rejected: int
    quarantined: int
    """Confirmed events this store could not apply (``pjai doctor`` lists them)."""
    lag: int | None
    last_error: str | None
    reconnects: int
    read_only: bool
    updated_at: str | None
    peers: list[PeerView]
    """Other instances on the store now (``pjai sync connect --name``; empty when no
    client runs here or the server does not relay presence)."""
    pid: int | None = None
    """The process running the client (``pjai sync connect`` or a web app), if one runs."""


@dataclass(frozen=True, slots=True)
class RejectedEvent:
    """A local event the sync rejected: which event, when, why and which event won."""

    id: str
    name: str
    at: datetime
    reason: str | None


def write_status(
    data_dir: DataDir, status: SyncStatus, url: str, store_id: str, peers: list[Peer]
) -> None:
    """Record the status of this process's sync client in the data directory's status
    file (read by :func:`sync_status`), replacing it whole. A file that cannot be
    written (a full disk) is said in the log; the sync goes on."""
    body = {
        **asdict(status),
        "lag": status.lag,
        "url": url,
        "store_id": store_id,
        "pid": os.getpid(),
        "updated_at": datetime.now(UTC).isoformat(),
        "peers": [
            {
                "name": p.name,
                "state": p.state,
                "client_id": p.client_id,
                "last_seen": p.last_seen.astimezone(UTC).isoformat(),
                "detail": p.detail,
            }
            for p in peers
        ],
    }
    path = data_dir.sync_status_path
    try:
        replace_text(path, json.dumps(body))
    except OSError as exc:
        log.warning("cannot write the sync status to %s: %s", path, exc)


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _no_store(data_dir: DataDir, hint: str) -> ConfigError:
    return ConfigError(f"{data_dir.path} has no store yet{hint}")


def sync_status(data_dir: DataDir) -> SyncReport:
    """Heads, pending events, lag and the last error of the directory's sync."""
    if not data_dir.store_path.exists():
        raise _no_store(data_dir, "; `pjai sync connect URL` makes one")
    with data_dir.open_store(sync=True) as store:
        confirmed = store.confirmed_head.global_seq
        pending, rejected = store.pending_count, len(store.rejected())
        quarantined = store.count_quarantined()
    seen = _seen(data_dir.sync_status_path)
    running = _alive(seen.pid) and seen.state not in ("stopped", "failed")
    server_head = seen.server_head
    lag = None if server_head is None else max(0, server_head - confirmed)
    state = (seen.state or "never connected") if running else "not running"
    return SyncReport(
        in_step=state == "online" and pending == 0 and lag == 0,
        state=state,
        last_state=seen.state,
        url=seen.url,
        store_id=seen.store_id,
        server_head=server_head,
        confirmed_head=confirmed,
        pending=pending,
        rejected=rejected,
        quarantined=quarantined,
        lag=lag,
        last_error=seen.last_error,
        reconnects=seen.reconnects,
        read_only=seen.read_only,
        updated_at=seen.updated_at,
        peers=[PeerView(**msgspec.structs.asdict(p)) for p in seen.peers] if running else [],
        pid=seen.pid if running else None,
    )


class _SeenPeer(msgspec.Struct, frozen=True):
    name: str
    state: str
    client_id: str
    last_seen: str
    detail: dict[str, str]


class _Seen(msgspec.Struct, frozen=True):
    """What :func:`write_status` records (the fields :func:`sync_status` reads)."""

    state: str | None = None
    pid: int | None = None
    server_head: int | None = None
    url: str | None = None
    store_id: str | None = None
    last_error: str | None = None
    reconnects: int = 0
    read_only: bool = False
    updated_at: str | None = None
    peers: list[_SeenPeer] = msgspec.field(default_factory=list)


def _seen(path: Path) -> _Seen:
    """The sync status file ``path`` (an empty status when there is none)."""
    try:
        return msgspec.json.decode(path.read_bytes(), type=_Seen)
    except FileNotFoundError:
        return _Seen()
    except OSError as exc:
        raise _not_status(path, f"cannot be read ({exc.strerror or exc})") from exc
    except msgspec.ValidationError as exc:
        raise _not_status(path, f"is not a sync status ({exc})") from exc
    except (ValueError, RecursionError) as exc:  # msgspec.DecodeError is a ValueError
        raise _not_status(path, f"is not JSON: {exc}") from exc


def _not_status(path: Path, problem: str) -> ConfigError:
    return ConfigError(
        f"{path} {problem}; the next `pjai sync connect` here writes it anew, or delete it"
    )


def sync_conflicts(data_dir: DataDir) -> list[RejectedEvent]:
    """Local events the sync rejected, with the reasons."""
    if not data_dir.store_path.exists():
        raise _no_store(data_dir, "")
    with data_dir.open_store(sync=True) as store:
        rejected = store.rejected()
    return [RejectedEvent(e.record.id, e.record.name, e.record.at, e.error) for e in rejected]
