"""``pjai sync ...``: sync this data directory through a sync server, and watch it.

``connect`` runs the sync client in the foreground and records what it sees in the
data directory after every change; ``status`` reads that record and the store, so it
works whether or not a client is running.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, fields
from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from pjai.app import DataDir, connect, sync_conflicts, sync_status, sync_url
from pjai.cli.common import (
    DEFAULT_DATA_DIR,
    DataDirOption,
    JsonFlag,
    console,
    errors,
    print_json,
    progress_bar,
    reported,
)
from pjai.cli.output import Format, id_column, listing, plain, print_rows
from pjai.sync.client import SyncClient, SyncStatus

__all__ = ["app", "sync_url"]

app = typer.Typer(help="Sync this data directory with other instances.", no_args_is_help=True)


def _given_store_id(value: str | None) -> str | None:
    """Refuse an empty ``--store-id`` (a Typer callback) rather than fall back to another."""
    if value is not None and not value.strip():
        raise typer.BadParameter("a store id cannot be empty; leave the option out for the default")
    return value


class _Reporter:
    """Prints each change of the sync status as a line on standard error, once: a
    change the line does not show (a reconnect count) prints nothing."""

    def __init__(self) -> None:
        self._last = ""

    def __call__(self, status: SyncStatus) -> None:
        error = f" ({status.last_error})" if status.last_error else ""
        line = (
            f"sync {status.state}: confirmed e{status.confirmed_head}, "
            f"server {'?' if status.server_head is None else f'e{status.server_head}'}, "
            f"{status.pending} pending{error}"
        )
        if line != self._last:
            errors.print(line, highlight=False)
            self._last = line


@contextmanager
def _quiet(logger: logging.Logger) -> Iterator[None]:
    """``logger`` prints nothing in the block (Python would print its warnings and errors
    to standard error, having no handler of its own)."""
    handler = logging.NullHandler()
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


@app.command("connect")
def connect_command(
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
    name: Annotated[
        str | None,
        typer.Option(
            help="How this instance appears to the others on the store (default: the "
            "host's name); --hidden to not appear.",
            show_default=False,
        ),
    ] = None,
    hidden: Annotated[
        bool, typer.Option("--hidden", help="Do not tell the others on the store.")
    ] = False,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Sync this data directory through a sync server until Ctrl-C, or with --once until level.

    A new data directory is made a synced one. Local commits are pushed, others' are
    pulled; the SQL primary receives confirmed events. Status is recorded in the data
    directory for pjai sync status. Progress goes to standard error; with --json,
    how the run ended (store, level, the last status) is one JSON line on standard output.
    """
    # The status lines say what the client logs; its log would say it a second time.
    client_log = logging.getLogger(SyncClient.__module__)
    with reported(), progress_bar("Catching up") as progress, _quiet(client_log):
        outcome = connect(
            DataDir(data_dir),
            url,
            token=token,
            store_id=store_id,
            once=once,
            timeout=timeout,
            report=_Reporter(),
            progress=progress,
            name=None if hidden else (name or socket.gethostname()[:80]),
        )
    if as_json:
        last = outcome.status
        print_json(
            {"store_id": outcome.store_id, "level": outcome.level, "lag": last.lag, **asdict(last)}
        )
    if outcome.status.state == "failed" or (once and not outcome.level):
        raise typer.Exit(code=1)


@app.command()
def status(data_dir: DataDirOption = DEFAULT_DATA_DIR, as_json: JsonFlag = False) -> None:
    """Heads, pending events, lag and the last error of this data directory's sync."""
    with reported():
        report = sync_status(DataDir(data_dir))
    if as_json:
        print_json(report)
        return
    for field in fields(report):
        value = getattr(report, field.name)
        if field.name.endswith("_at") and isinstance(value, str):
            value = datetime.fromisoformat(value)  # the status file keeps ISO text
        console.print(Text.assemble((f"{field.name:>14}", "bold"), f" {plain(value)}"))


@app.command()
@listing
def conflicts(
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    fmt: Format = "table",
) -> None:
    """Local events the sync rejected: which event, why, and which event won."""
    with reported():
        rejected = sync_conflicts(DataDir(data_dir))
    if fmt == "table" and not rejected:
        console.print("No rejected events.")
        return
    table = Table("event", id_column(), "at (UTC)", "why")
    for event in rejected:
        table.add_row(event.name, event.id, f"{event.at:%Y-%m-%d %H:%M:%S}", plain(event.reason))
    print_rows(rejected, table, fmt)
