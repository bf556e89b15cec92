"""The metrics of a sync server process, as ``/metrics`` serves them (Prometheus text;
docs/sync-protocol.md lists them)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["Metrics"]


class Metrics:
    """The Prometheus metrics of one sync server process (its hub), in a registry of
    their own: ``/metrics`` serves them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.connections = Gauge(
            "pjai_sync_connections", "Open sync connections", registry=self.registry
        )
        self.appended = Counter(
            "pjai_sync_events_appended", "Events appended to the log", registry=self.registry
        )
        self.pushes = Counter(
            "pjai_sync_pushes", "Pushes answered", ["result"], registry=self.registry
        )
        self.sent = Counter(
            "pjai_sync_events_sent", "Events sent to pullers", registry=self.registry
        )
        self.refreshes = Counter(
            "pjai_sync_refreshes", "Reads of other processes' appends", registry=self.registry
        )
        self.closed = Counter(
            "pjai_sync_connections_closed", "Connections closed", ["reason"], registry=self.registry
        )
        self.held = Counter(
            "pjai_sync_frames_held",
            "Frames after which a connection was not read for a while: its token was over "
            "its request or byte rate",
            registry=self.registry,
        )
