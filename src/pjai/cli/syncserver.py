"""``pjai sync-server ...``: run the sync server, manage its access tokens, show its audit
trail."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

import typer
from rich import box
from rich.table import Column, Table
from rich.text import Text

from pjai.app import DataDir
from pjai.cli.common import (
    DEFAULT_DATA_DIR,
    DataDirOption,
    JsonFlag,
    PortOpt,
    console,
    errors,
    fail,
    print_json,
    print_result,
    reported,
)
from pjai.cli.output import Format, listing, print_rows
from pjai.cli.tokens import (
    ExpiresIn,
    LabelAlias,
    Overlap,
    TokenName,
    duration,
    print_rotated,
    print_secret,
    print_tokens,
    token_name,
    when,
)
from pjai.errors import ConfigError
from pjai.resource import Resource
from pjai.sync.server import (
    DEFAULT_MAX_STORE_BYTES,
    PER_TOKEN,
    SERVER_FILE,
    AuditEntry,
    Limits,
    ServerConfig,
    ServerDatabase,
    SyncServer,
    default_total,
    local_actor,
)
from pjai.sync.server.tokens import Role, check_new_token

__all__ = ["app"]

R = TypeVar("R", bound=Resource)

app = typer.Typer(
    help="Run the sync server, manage its access tokens, show its audit trail.",
    no_args_is_help=True,
)
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


def _database(db: str | None, data_dir: Path) -> str | Path:
    """``--db``, else the server's file in the data directory."""
    return db or DataDir(data_dir).sync_server_path


@contextmanager
def _opened(
    db: str | None, data_dir: Path, open_: Callable[[str | Path], R], *, create: bool = True
) -> Iterator[R]:
    """``open_`` on the server's database, closed when the block ends. Its file in the
    data directory (no ``--db``), which opening makes if missing (``create``), is made
    as the directory's other files are, under :meth:`DataDir.writing`: refused at once
    while an import or a backup goes into the directory, which found it empty and,
    failing, would remove what it did not make."""
    with ExitStack() as held:
        if db is None and create:
            held.enter_context(DataDir(data_dir).writing())
        opened = open_(_database(db, data_dir))
    with opened:
        yield opened


@contextmanager
def _server_database(
    db: str | None, data_dir: Path, *, create: bool = True
) -> Iterator[ServerDatabase]:
    """The server's database (tokens, audit trail), its errors reported for a human.

    Without ``create`` (commands that only read), a missing database file is an error
    naming it rather than a new, empty one.
    """
    where = _database(db, data_dir)
    if not create and isinstance(where, Path) and not where.exists():
        raise fail(
            ConfigError(
                f"no sync server database at {where}; `pjai sync-server serve` or "
                "`pjai sync-server token create` makes one"
            )
        )
    with reported(), _opened(db, data_dir, ServerDatabase.open, create=create) as database:
        yield database


_SERVER = ServerConfig()
"""The rates a server holds clients to unless told otherwise."""


def _above_zero(value: float) -> float:
    """A rate option's value, refused (naming the option) unless a number above 0."""
    if not (math.isfinite(value) and value > 0):
        raise typer.BadParameter(f"must be a number above 0, got {value:g}")
    return value


def _rate(help_: str) -> Any:  # typer.Option says it returns Any
    return typer.Option(callback=_above_zero, help=help_)


@app.command()
def serve(
    db: DbOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: PortOpt = 8765,
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
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            help="With --no-auth: a name clients call the server by, besides its IP "
            "addresses, localhost and the machine's own name (repeatable)."
        ),
    ] = None,
    max_connections: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Connections the process holds at most (default: half its open-file "
            "limit, at most 10,000).",
        ),
    ] = None,
    max_per_token: Annotated[
        int, typer.Option(min=1, help="Connections one token holds at most.")
    ] = PER_TOKEN,
    event_rate: Annotated[
        float,
        _rate(
            "Events a second one token may push (bursts up to twice that, at least one "
            "full push of 1,000)."
        ),
    ] = _SERVER.rate,
    byte_rate: Annotated[
        float,
        _rate(
            "Bytes of frames a second one token may send, pushes and the others (bursts "
            "up to twice that, at least one frame of the largest size)."
        ),
    ] = _SERVER.byte_rate,
    request_rate: Annotated[
        float,
        _rate(
            "Requests a second one token may make besides its pushes: hellos, pulls, "
            "pings, presence, /pull and /keys (bursts up to ten times that)."
        ),
    ] = _SERVER.request_rate,
    connection_rate: Annotated[
        float,
        _rate(
            "Connections a second one remote address, and one token, may open (bursts "
            "up to ten times that)."
        ),
    ] = _SERVER.connection_rate,
    max_store_bytes: Annotated[
        int,
        typer.Option(
            min=0,
            help="Bytes of events one store's log holds at most (0: no limit); a push "
            "past it is asked to wait, and its events stay on the device.",
        ),
    ] = DEFAULT_MAX_STORE_BYTES,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Serve sync clients over WebSockets (/sync) and HTTP (/pull, /health, /metrics).

    Once it listens it prints where (with --json, one JSON line: url, backend_id,
    storage), then serves until Ctrl-C.
    """
    limits = Limits(total=max_connections or default_total(), per_token=max_per_token)
    config = ServerConfig(
        require_tokens=not no_auth,
        poll_interval=poll,
        hosts=frozenset(allowed_host or ()),
        limits=limits,
        rate=event_rate,
        byte_rate=byte_rate,
        request_rate=request_rate,
        connection_rate=connection_rate,
        max_store_bytes=max_store_bytes or None,
    )
    with (
        reported(),
        _opened(db, data_dir, lambda where: SyncServer.open(where, config)) as server,
    ):
        started = server.run(
            host, port, on_listening=lambda url: _listening(server, url, as_json=as_json)
        )
    if not started:
        errors.print(
            Text.assemble(("error:", "bold red"), " the sync server did not start (see above)")
        )
        raise typer.Exit(code=1)
    errors.print("sync server stopped", highlight=False)


def _listening(server: SyncServer, url: str, *, as_json: bool) -> None:
    if as_json:
        print_json({"url": url, "backend_id": server.backend_id, "storage": server.storage})
    else:
        console.print(
            f"pjai sync server listening on {url} (backend {server.backend_id}, {server.storage})",
            highlight=False,
        )
    if server.refuses_everyone():
        errors.print(
            "note: no live tokens, so every client is refused; create one with "
            "`pjai sync-server token create`",
            soft_wrap=True,
            highlight=False,
        )


@token_app.command("create")
def create_token(
    store: Annotated[str, typer.Option(help="The store id the token is for; * for every store.")],
    role: Annotated[str, typer.Option(help="read (pull), write (also push) or admin.")],
    name: TokenName = None,
    expires_in: ExpiresIn = None,
    db: DbOpt = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
    label: LabelAlias = None,
) -> None:
    """Create a token and print its secret, the only time it is shown."""
    given = token_name(name, label)
    lifetime = duration(expires_in)
    with reported():  # before the database is made
        check_new_token(store, role, lifetime)
    with _server_database(db, data_dir) as database:
        secret, token = database.tokens.create(
            store, cast(Role, role), given, expires_in=lifetime, actor=local_actor()
        )
    made = f"Created token {token.id} ({token.role} on store {token.store_id!r})."
    print_secret(secret, token, made, as_json=as_json)


@token_app.command("list")
@listing
def list_tokens(
    db: DbOpt = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    fmt: Format = "table",
) -> None:
    """List tokens, revoked and expired ones too (never their secrets), each with its
    state: live, expired or revoked."""
    with _server_database(db, data_dir, create=False) as database:
        found = database.tokens.list()
    print_tokens(found, fmt)


@token_app.command("revoke")
def revoke_token(
    token_id: Annotated[str, typer.Argument(metavar="ID", help="The token's id.")],
    db: DbOpt = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Revoke a token: clients using it are refused from then on."""
    with _server_database(db, data_dir, create=False) as database:
        token = database.tokens.revoke(token_id, actor=local_actor())
    text = f"Revoked token {token.id} ({token.role} on store {token.store_id!r})."
    print_result(dataclasses.asdict(token), as_json, text)


@token_app.command("rotate")
def rotate_token(
    token_id: Annotated[str, typer.Argument(metavar="ID", help="The token's id.")],
    overlap: Overlap = "1h",
    expires_in: ExpiresIn = None,
    db: DbOpt = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Replace a token with a new one for the same store and role, printing the new
    secret once; the old one keeps working for the overlap, so clients move over
    without downtime."""
    grace = duration(overlap)
    assert grace is not None
    with _server_database(db, data_dir, create=False) as database:
        secret, new, old = database.tokens.rotate(
            token_id, overlap=grace, expires_in=duration(expires_in), actor=local_actor()
        )
    print_rotated(secret, new, old, "token", as_json=as_json)


@app.command()
@listing
def audit(
    limit: Annotated[
        int | None, typer.Option(min=1, help="Show only the newest N entries.", show_default=False)
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            help="Only the entries of this token (its id, or a unique start of it).",
            show_default=False,
        ),
    ] = None,
    db: DbOpt = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    fmt: Format = "table",
) -> None:
    """Show the audit trail: tokens created and revoked, when and by whom (oldest first)."""
    with _server_database(db, data_dir, create=False) as database:
        token_id = None if token is None else database.tokens.resolve(token)
        entries = database.audit.list(limit=limit, token_id=token_id)
    print_rows(entries, _audit_table(entries), fmt)


def _audit_table(entries: list[AuditEntry]) -> Table:
    # The token's id whole (on two lines if need be) and who made the change come first:
    # on a narrow terminal, Rich cuts the last column.
    table = Table(
        Column("when (UTC)", min_width=10),
        Column("action", no_wrap=True),
        Column("token", overflow="fold", min_width=18),
        Column("by", overflow="fold", max_width=16),
        Column("store", overflow="fold", max_width=12),
        Column("role", max_width=5),
        Column("name", overflow="fold"),
        box=box.SIMPLE_HEAD,
    )
    for e in entries:
        table.add_row(
            when(e.at), e.action, e.token_id, e.actor or "", e.store_id, e.role, e.token_label
        )
    return table
