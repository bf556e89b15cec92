"""Syncing stores between instances through a sync server (docs/sync-protocol.md).

The client side is here: :class:`SyncClient` over a :data:`Connector` such as
:func:`websocket_connector`, the protocol (:mod:`pjai.sync.protocol`) and the
transports. The server is :mod:`pjai.sync.server` (``pjai sync-server``), the only part
of this package that imports :mod:`pjai.sql`, Starlette, uvicorn or prometheus_client.
"""

from __future__ import annotations

from pjai.sync.client import SyncClient, SyncStatus
from pjai.sync.protocol import VERSIONS, Peer
from pjai.sync.transport import ConnectionClosed, Connector, Transport
from pjai.sync.websocket import websocket_connector

__all__ = [
    "VERSIONS",
    "ConnectionClosed",
    "Connector",
    "Peer",
    "SyncClient",
    "SyncStatus",
    "Transport",
    "websocket_connector",
]
