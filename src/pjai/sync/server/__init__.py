"""The sync server (``pjai sync-server``; docs/sync-protocol.md).

:class:`SyncServer` is the server as one resource: its database
(:class:`ServerDatabase`: the event log, the access tokens and the audit trail of
changes to them, in SQLite or PostgreSQL), the :class:`Hub` that serves connections,
the ASGI app, and uvicorn. Inside:

- :mod:`~pjai.sync.server.session`: one connection's protocol state, without I/O
  (what the events of a push must be: :mod:`pjai.sync.validation`, which clients use
  too);
- :mod:`~pjai.sync.server.hub`: the connections and per-store feeds of a process, each
  connection's tasks in :mod:`~pjai.sync.server.connection`, the frames its live pullers
  share in :mod:`~pjai.sync.server.frames`, its metrics in
  :mod:`~pjai.sync.server.metrics`;
- :mod:`~pjai.sync.server.places`: how many connections a process holds, and whose;
- :mod:`~pjai.sync.server.log`, :mod:`~pjai.sync.server.sqllog`: the event log, its
  newest events kept in memory in :mod:`~pjai.sync.server.recent`;
- :mod:`~pjai.sync.server.tokens`, :mod:`~pjai.sync.server.audit`: tokens, audit trail;
- :mod:`~pjai.sync.server.memory`: the freed memory given back to the system;
- :mod:`~pjai.sync.server.tables`: the database's tables;
- :mod:`~pjai.sync.server.asgi`, :mod:`~pjai.sync.server.browsers`,
  :mod:`~pjai.sync.server.websocket`, :mod:`~pjai.sync.server.sockets`,
  :mod:`~pjai.sync.server.wakeups`: Starlette, uvicorn and PostgreSQL notifications.

This is the only part of :mod:`pjai.sync` that imports :mod:`pjai.sql`, Starlette,
uvicorn or prometheus_client.
"""

from __future__ import annotations

from pjai.sync.server.asgi import create_app
from pjai.sync.server.audit import AuditEntry, AuditTrail, local_actor
from pjai.sync.server.database import SERVER_FILE, ServerDatabase, database_url
from pjai.sync.server.hub import Hub
from pjai.sync.server.log import (
    DEFAULT_MAX_STORE_BYTES,
    Appended,
    DuplicateEventError,
    MemoryLog,
    OverQuota,
    ServerAhead,
    ServerLog,
)
from pjai.sync.server.places import PER_TOKEN, Limits, default_total
from pjai.sync.server.session import ServerSession
from pjai.sync.server.sockets import listening_socket, websocket_protocol
from pjai.sync.server.sqllog import SqlLog
from pjai.sync.server.syncserver import ServerConfig, SyncServer
from pjai.sync.server.tokens import ROLES, RateLimiter, Token, TokenStore

__all__ = [
    "DEFAULT_MAX_STORE_BYTES",
    "PER_TOKEN",
    "ROLES",
    "SERVER_FILE",
    "Appended",
    "AuditEntry",
    "AuditTrail",
    "DuplicateEventError",
    "Hub",
    "Limits",
    "MemoryLog",
    "OverQuota",
    "RateLimiter",
    "ServerAhead",
    "ServerConfig",
    "ServerDatabase",
    "ServerLog",
    "ServerSession",
    "SqlLog",
    "SyncServer",
    "Token",
    "TokenStore",
    "create_app",
    "database_url",
    "default_total",
    "listening_socket",
    "local_actor",
    "websocket_protocol",
]
