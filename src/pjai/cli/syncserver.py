"""``pjai sync-server ...``: run the sync server and manage its access tokens."""

from __future__ import annotations

import dataclasses
import errno
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated, cast

import typer
import uvicorn
from rich import box
from rich.table import Column, Table
from rich.text import Text
from sqlalchemy.engine import make_url

from pjai.cli.common import DEFAULT_DATA_DIR, DataDir, JsonFlag, console, errors, fail, print_json
from pjai.errors import ConfigError, PjaiError
from pjai.sql.engine import redacted
from pjai.sync.server import (
    ServerConfig,
    create_app,
    listening_socket,
    open_server,
    websocket_protocol,
)
from pjai.sync.tokens import Role, TokenStore

__all__ = ["SERVER_FILE", "app", "server_url"]

SERVER_FILE = "sync-server.db"

app = typer.Typer(help="Run the sync server and manage its access tokens.", no_args_is_help=True)
token_app = typer.Typer(help="Create, list and revoke access tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="PJAI_SYNC_DB",
        help="The server's database URL (SQLite or PostgreSQL); "
        f"default: {SERVER_FILE} in the data directory.",
        show_default=False,
    ),
]


def server_url(db: str | None, data_dir: Path) -> str:
    """The sync server's database URL: ``--db``, else an SQLite file in the data directory."""
    return db or f"sqlite:///{data_dir / SERVER_FILE}"


@app.command()
def serve(
    db: DbOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port to listen on; 0 picks a free one.")
    ] = 8765,
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="Accept clients without a token (trusted networks).")
    ] = False,
    poll: Annotated[
        float,
        typer.Option(
            min=0.01,
            help="Seconds between reads of what other server processes appended "
            "(the fallback when a PostgreSQL notification is lost).",
        ),
    ] = 1.0,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Serve sync clients over WebSockets (/sync) and HTTP (/pull, /health, /metrics)."""
    url = server_url(db, data_dir)
    try:
        hub, tokens = open_server(ServerConfig(url, require_tokens=not no_auth, poll_interval=poll))
    except PjaiError as exc:
        raise fail(exc) from exc
    try:
        sock = _listen(host, port)
    except PjaiError as exc:
        tokens.engine.dispose()
        raise fail(exc) from exc
    postgres = make_url(url).get_backend_name() == "postgresql"
    asgi = create_app(hub, tokens, listen_url=url if postgres else None)
    config = uvicorn.Config(
        asgi,
        ws=websocket_protocol(hub.close_timeout),
        lifespan="on",
        log_level="warning",
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    address = f"[{host}]" if ":" in host else host
    try:
        with _stopped_by_signals(server):
            console.print(
                f"pjai sync server listening on http://{address}:{sock.getsockname()[1]} "
                f"(backend {hub.log.backend_id}, {redacted(url)})",
                soft_wrap=True,
                highlight=False,
            )
            if not no_auth and not tokens.list():
                errors.print(
                    "note: no tokens yet, so every client is refused; create one with "
                    "`pjai sync-server token create`",
                    soft_wrap=True,
                    highlight=False,
                )
            server.run(sockets=[sock])
    finally:
        sock.close()
        tokens.engine.dispose()
    if not server.started:
        errors.print(
            Text.assemble(("error:", "bold red"), " the sync server did not start (see above)")
        )
        raise typer.Exit(code=1)
    errors.print("sync server stopped", highlight=False)


def _listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port``, bound before uvicorn starts."""
    try:
        return listening_socket(host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            message = (
                f"cannot listen on {host}:{port}: the port is in use (another server?); "
                "choose another --port, or --port 0 for a free one"
            )
        else:
            message = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        raise ConfigError(message) from exc


@contextmanager
def _stopped_by_signals(server: uvicorn.Server) -> Iterator[None]:
    """SIGTERM and Ctrl-C stop ``server`` gracefully, then the command exits 0.

    uvicorn handles both while it serves and, once shut down, raises the signal again
    with the handlers it found: these, which only ask it to stop. They are in place
    from before the "listening" line, so an early signal stops the server as well.
    """

    def stop(_sig: int, _frame: FrameType | None) -> None:
        server.should_exit = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _tokens(db: str | None, data_dir: Path) -> TokenStore:
    _, tokens = open_server(ServerConfig(server_url(db, data_dir)))
    return tokens


@token_app.command("create")
def create_token(
    store: Annotated[str, typer.Option(help="The store id the token is for; * for every store.")],
    role: Annotated[str, typer.Option(help="read (pull), write (also push) or admin.")],
    name: Annotated[str, typer.Option(help="A label to recognise the token by.")] = "",
    db: DbOpt = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Create a token and print its secret, the only time it is shown."""
    try:
        tokens = _tokens(db, data_dir)
        try:
            secret, token = tokens.create(store, cast(Role, role), name)  # checks the role
        finally:
            tokens.engine.dispose()
    except PjaiError as exc:
        raise fail(exc) from exc
    if as_json:
        print_json({"secret": secret, **dataclasses.asdict(token)})
        return
    # The secret alone on stdout, so that SECRET=$(pjai sync-server token create ...) works.
    print(secret)
    errors.print(
        f"Created token {token.id} ({token.role} on store {token.store_id!r}). "
        "Keep the secret above: it is not shown again.",
        highlight=False,
    )


@token_app.command("list")
def list_tokens(
    db: DbOpt = None, data_dir: DataDir = DEFAULT_DATA_DIR, as_json: JsonFlag = False
) -> None:
    """List tokens, revoked ones too (never their secrets)."""
    try:
        tokens = _tokens(db, data_dir)
        try:
            found = tokens.list()
        finally:
            tokens.engine.dispose()
    except PjaiError as exc:
        raise fail(exc) from exc
    if as_json:
        print_json(found)
        return
    table = Table("name", "store", "role", "created (UTC)", "revoked", box=box.SIMPLE_HEAD)
    table.columns.insert(0, Column("id", no_wrap=True, min_width=36))  # revoke needs it whole
    for t in found:
        table.add_row(t.id, t.label, t.store_id, t.role, _when(t.created_at), _when(t.revoked_at))
    console.print(table)


def _when(iso: str | None) -> str:
    return "" if iso is None else f"{iso[:10]} {iso[11:16]}"


@token_app.command("revoke")
def revoke_token(
    token_id: Annotated[str, typer.Argument(metavar="ID", help="The token's id.")],
    db: DbOpt = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Revoke a token: clients using it are refused from then on."""
    try:
        tokens = _tokens(db, data_dir)
        try:
            token = tokens.revoke(token_id)
        finally:
            tokens.engine.dispose()
    except PjaiError as exc:
        raise fail(exc) from exc
    console.print(
        f"Revoked token {token.id} ({token.role} on store {token.store_id!r}).",
        highlight=False,
    )
