"""Syncing stores between instances through a sync server (docs/sync-protocol.md).

The client side is here: :class:`SyncClient` over a connector such as
:func:`websocket_connector`. The server is :mod:`pjai.sync.server` (``pjai sync-server``),
the protocol :mod:`pjai.sync.protocol`, the server's log :mod:`pjai.sync.log` and
:mod:`pjai.sync.sqllog`.
"""

from __future__ import annotations

from pjai.sync.client import SyncClient, SyncStatus
from pjai.sync.hub import Connector
from pjai.sync.protocol import VERSIONS
from pjai.sync.websocket import websocket_connector

__all__ = ["VERSIONS", "Connector", "SyncClient", "SyncStatus", "websocket_connector"]
