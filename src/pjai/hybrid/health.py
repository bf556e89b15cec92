"""Health of the store, the SQL shards and the bridge between them."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from pjai.errors import PjaiError, StoreError
from pjai.hybrid.quarantine import QuarantineReport, report, unreviewed
from pjai.sql import journal
from pjai.store.filequarantine import read_quarantine

if TYPE_CHECKING:
    from pjai.hybrid.manager import HybridDatabaseManager

__all__ = ["BridgeHealth", "Health", "ShardHealth", "StoreHealth", "check"]


@dataclass(slots=True)
class StoreHealth:
    """The reactive store."""

    status: str
    path: str
    head: int = 0
    events: int = 0
    pending: int = 0
    quarantined: int = 0
    """Confirmed events the store could not apply (acknowledged ones included)."""
    live_queries: int = 0
    probe_ms: float | None = None
    disk_bytes: int = 0
    damage: list[str] = field(default_factory=list)
    """What SQLite found wrong with the file's pages (``PRAGMA quick_check``)."""
    error: str | None = None


@dataclass(slots=True)
class ShardHealth:
    """One SQL primary."""

    url: str
    status: str
    probe_ms: float | None = None
    checkpoint: int = 0
    journal_events: int = 0
    quarantined: int = 0
    """Events this shard's journal holds as quarantined (acknowledged ones included)."""
    pool: dict[str, int] = field(default_factory=dict)
    disk_bytes: int = 0
    error: str | None = None


@dataclass(slots=True)
class BridgeHealth:
    """Projection from the store into SQL."""

    lag_events: int
    lag_p95_ms: float | None
    projected: int
    last_error: str | None


@dataclass(slots=True)
class Health:
    """Everything :func:`check` found; ``status`` is ok, degraded or down."""

    status: str
    store: StoreHealth
    shards: list[ShardHealth]
    bridge: BridgeHealth
    quarantine: QuarantineReport
    """Quarantined events on either side that no one has acknowledged yet."""
    flags: dict[str, bool]
    last_error: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _probe(action: Any) -> float:
    started = time.perf_counter()
    action()
    return round((time.perf_counter() - started) * 1000, 3)


def _store(manager: HybridDatabaseManager) -> StoreHealth:
    store = manager.store
    if store is None:
        # Another process may have the store on, and quarantine events in its file.
        try:
            in_file = read_quarantine(manager.store_path)
        except PjaiError as exc:
            return StoreHealth("off", str(manager.store_path), error=str(exc))
        return StoreHealth("off", str(manager.store_path), quarantined=in_file.total)
    try:
        summary = store.summary()
        probe = _probe(lambda: store.query("SELECT count(*) FROM pjai_meta"))
        damage = store.check()
    except PjaiError as exc:
        return StoreHealth("down", str(manager.store_path), error=str(exc))
    return StoreHealth(
        "damaged" if damage else "ok",
        str(manager.store_path),
        head=store.head.global_seq,
        events=int(str(summary["events"])),
        pending=int(str(summary["pending"])),
        quarantined=int(str(summary["quarantined"])),
        live_queries=store.live_queries,
        probe_ms=probe,
        disk_bytes=store.disk_bytes(),
        damage=damage,
        error="the file is damaged: `pjai repair --side store` rebuilds it in a new file"
        if damage
        else None,
    )


def _shard(shard: Any) -> ShardHealth:
    pool = shard.engine.pool
    stats = {
        name: int(getattr(pool, name)())
        for name in ("size", "checkedin", "checkedout", "overflow")
        if hasattr(pool, name)
    }
    try:
        with shard.writer.connection("checking SQL health") as conn:
            probe = _probe(lambda: conn.execute(text("SELECT 1")).scalar_one())
            return ShardHealth(
                shard.url,
                "ok",
                probe_ms=probe,
                checkpoint=shard.writer.checkpoint(),
                journal_events=journal.count(conn),
                quarantined=journal.count(conn, journal.QUARANTINED),
                pool=stats,
                disk_bytes=shard.writer.backend.database_bytes(conn),
            )
    except PjaiError as exc:
        return ShardHealth(shard.url, "down", pool=stats, error=str(exc))


def check(manager: HybridDatabaseManager) -> Health:
    """Probe both systems and report."""
    store = _store(manager)
    shards = [_shard(shard) for shard in manager.shards]
    reachable = [s for s in shards if s.status == "ok"]
    lag = max(0, manager.head() - min((s.checkpoint for s in reachable), default=0))
    bridging = manager.bridge.report
    lags = sorted(bridging.lags_ms)
    bridge = BridgeHealth(
        lag_events=lag if reachable else manager.head(),
        lag_p95_ms=round(lags[int(0.95 * (len(lags) - 1))], 3) if lags else None,
        projected=bridging.projected,
        last_error=bridging.last_error or manager.last_error,
    )
    quarantine = QuarantineReport(store=store.quarantined)
    # With the store off, SQL's quarantined events count all the more: SQL is all that
    # is read. The store file's count too: another process may have the store on.
    if len(reachable) == len(shards) and store.status in ("ok", "off"):
        try:
            quarantine = report(manager)
        except StoreError as exc:  # the store is off and its file could not be read
            store.error = str(exc)
            quarantine = unreviewed(None, manager.shards)
    unread = store.status == "off" and store.error is not None
    if store.status in ("down", "damaged") or not reachable:
        status = "down"
    elif len(reachable) < len(shards) or lag or quarantine.alarm or manager.last_error or unread:
        # last_error: also a journal broken by a cut-off commit, which stops commits.
        status = "degraded"
    else:
        status = "ok"
    return Health(
        status,
        store,
        shards,
        bridge,
        quarantine,
        {state.name: state.value for state in manager.flags.all()},
        manager.last_error,
    )
