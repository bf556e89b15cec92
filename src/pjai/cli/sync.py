"""``pjai sync ...``: sync this data directory through a sync server, and watch it.

``connect`` runs the sync client in the foreground and writes what it sees to
``sync-status.json`` in the data directory after every change; ``status`` reads that
file and the store, so it works whether or not a client is running.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import operator
import os
import signal
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

import typer
from rich.text import Text

from pjai.cli.common import (
    DEFAULT_DATA_DIR,
    DataDir,
    JsonFlag,
    console,
    errors,
    fail,
    open_manager,
    print_json,
    store_path,
)
from pjai.errors import ConfigError, PjaiError
from pjai.hybrid.flags import Flags
from pjai.store import Store
from pjai.sync.client import STORE_KEY, SyncClient, SyncStatus
from pjai.sync.websocket import websocket_connector

__all__ = ["STATUS_FILE", "app", "sync_url"]

STATUS_FILE = "sync-status.json"

app = typer.Typer(help="Sync this data directory with other instances.", no_args_is_help=True)


def sync_url(url: str) -> str:
    """The WebSocket URL of a server given as ``http(s)://host:port`` or ``ws(s)://...``."""
    parts = urlsplit(url)
    schemes = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
    if parts.scheme not in schemes or not parts.netloc:
        raise ConfigError(f"{url!r} is not a sync server URL like http://host:8765")
    path = parts.path if parts.path not in ("", "/") else "/sync"
    return urlunsplit((schemes[parts.scheme], parts.netloc, path, parts.query, ""))


def _given_store_id(value: str | None) -> str | None:
    """Refuse an empty ``--store-id`` (a Typer callback) rather than fall back to another."""
    if value is not None and not value.strip():
        raise typer.BadParameter("a store id cannot be empty; leave the option out for the default")
    return value


def _write_status(data_dir: Path, status: SyncStatus, url: str, store_id: str) -> None:
    body = {
        **asdict(status),
        "lag": status.lag,
        "url": url,
        "store_id": store_id,
        "pid": os.getpid(),
        "updated_at": datetime.now(UTC).isoformat(),
    }
    path = data_dir / STATUS_FILE
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(body))
    temporary.replace(path)


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


async def _run(
    client: SyncClient,
    report: Callable[[SyncStatus], None],
    *,
    once: bool,
    limit: float | None,
) -> bool:
    """Run ``client``, reporting each status; with ``once``, until level. Whether it got there."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    client.start()
    last: SyncStatus | None = None
    level = False

    async def follow() -> None:
        nonlocal last, level
        while True:
            status = client.status
            if status != last:
                report(status)
                last = status
            if status.state == "failed":
                return
            if once and status.state == "online" and status.pending == 0 and status.lag == 0:
                level = True
                return
            await client.wait_until(partial(operator.ne, status))

    watching = asyncio.create_task(follow())
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({watching, stopping}, timeout=limit, return_when="FIRST_COMPLETED")
    finally:
        for task in (watching, stopping):
            task.cancel()
        await asyncio.gather(watching, stopping, return_exceptions=True)
        await client.stop()
        report(client.status)
    return level


@app.command()
def connect(
    url: Annotated[str, typer.Argument(help="The sync server, e.g. http://host:8765.")],
    token: Annotated[
        str, typer.Option(envvar="PJAI_SYNC_TOKEN", help="Bearer token from the server's admin.")
    ] = "",
    store_id: Annotated[
        str | None,
        typer.Option(
            help="The shared store (default: the one it synced with, or default).",
            callback=_given_store_id,
        ),
    ] = None,
    once: Annotated[
        bool, typer.Option(help="Stop once level with the server (exit 1 if it is not).")
    ] = False,
    timeout: Annotated[
        float | None, typer.Option(help="Give up after this many seconds.", min=0)
    ] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Sync this data directory through a sync server until Ctrl-C, or with --once until level.

    A new data directory is made a synced one. Local commits are pushed, others' are
    pulled; the SQL primary receives confirmed events. Status goes to
    ``sync-status.json`` for ``pjai sync status``.
    """
    try:
        ws_url = sync_url(url)
    except ConfigError as exc:
        raise fail(exc) from exc
    flags = Flags(data_dir / "flags.json")
    made_synced = not store_path(data_dir).exists() and not flags["sync"]
    if made_synced:
        flags.set("sync", True)  # a new directory: make it a synced one
    opened = False
    try:
        with open_manager(data_dir) as manager:
            opened = True
            assert manager.store is not None
            store_id = store_id or manager.store.meta(STORE_KEY) or "default"
            connector = websocket_connector(ws_url, token)
            try:
                client = manager.sync_client(connector, store_id=store_id)
            except PjaiError as exc:
                raise fail(exc) from exc

            def report(status: SyncStatus) -> None:
                _write_status(data_dir, status, ws_url, store_id)
                error = f" ({status.last_error})" if status.last_error else ""
                errors.print(
                    f"sync {status.state}: confirmed e{status.confirmed_head}, "
                    f"server {'?' if status.server_head is None else f'e{status.server_head}'}, "
                    f"{status.pending} pending{error}",
                    highlight=False,
                )

            level = asyncio.run(_run(client, report, once=once, limit=timeout))
            if client.status.state == "failed" or (once and not level):
                raise typer.Exit(code=1)
    except BaseException:
        if made_synced and not opened:
            flags.set("sync", False)  # nothing was made: leave the directory as it was
        raise


def _store_view(data_dir: Path) -> dict[str, Any]:
    path = store_path(data_dir)
    if not path.exists():
        raise ConfigError(f"{data_dir} has no store yet; `pjai sync connect URL` makes one")
    with Store.open(path, sync=True) as store:
        return {
            "confirmed_head": store.confirmed_head.global_seq,
            "pending": store.pending_count,
            "rejected": len(store.rejected()),
            # Confirmed events this store could not apply (`pjai doctor` lists them).
            "quarantined": store.count_quarantined(),
        }


@app.command()
def status(data_dir: DataDir = DEFAULT_DATA_DIR, as_json: JsonFlag = False) -> None:
    """Heads, pending events, lag and the last error of this data directory's sync."""
    try:
        local = _store_view(data_dir)
    except PjaiError as exc:
        raise fail(exc) from exc
    try:
        seen: dict[str, Any] = json.loads((data_dir / STATUS_FILE).read_text())
    except FileNotFoundError:
        seen = {}
    except json.JSONDecodeError as exc:
        raise fail(ConfigError(f"{data_dir / STATUS_FILE} is not JSON: {exc}")) from exc
    running = _alive(seen.get("pid")) and seen.get("state") not in ("stopped", "failed")
    server_head = seen.get("server_head")
    body = {
        "state": seen.get("state", "never connected") if running else "not running",
        "last_state": seen.get("state"),
        "url": seen.get("url"),
        "store_id": seen.get("store_id"),
        "server_head": server_head,
        **local,
        "lag": None if server_head is None else max(0, server_head - local["confirmed_head"]),
        "last_error": seen.get("last_error"),
        "reconnects": seen.get("reconnects", 0),
        "read_only": seen.get("read_only", False),
        "updated_at": seen.get("updated_at"),
    }
    if as_json:
        print_json(body)
        return
    for key, value in body.items():
        console.print(Text.assemble((f"{key:>14}", "bold"), f" {value}"))


@app.command()
def conflicts(data_dir: DataDir = DEFAULT_DATA_DIR, as_json: JsonFlag = False) -> None:
    """Local events the sync rejected: which event, why, and which event won."""
    path = store_path(data_dir)
    if not path.exists():
        raise fail(ConfigError(f"{data_dir} has no store yet"))
    try:
        with Store.open(path, sync=True) as store:
            rejected = store.rejected()
    except PjaiError as exc:
        raise fail(exc) from exc
    rows = [
        {"id": e.record.id, "name": e.record.name, "at": e.record.at, "reason": e.error}
        for e in rejected
    ]
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("No rejected events.")
    for row in rows:
        console.print(
            Text.assemble(
                (str(row["name"]), "bold"),
                f" {row['id']} ({row['at']:%Y-%m-%d %H:%M:%S}): {row['reason']}",
            ),
            soft_wrap=True,
        )
