"""`pjai serve` runs the web app; `pjai web passphrase` sets the login it asks for off
loopback, `pjai web token ...` manages its sessions and access tokens."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from pjai.app import MAX_UPLOAD_MB, UPLOAD_PROGRESS_BYTES, UPLOAD_TIMEOUT_S
from pjai.cli.common import (
    DEFAULT_DATA_DIR,
    DataDirOption,
    JsonFlag,
    PortOpt,
    console,
    data_directory,
    interactive,
    print_json,
    print_result,
    reported,
)
from pjai.cli.output import Format, listing
from pjai.cli.tokens import (
    ExpiresIn,
    LabelAlias,
    Overlap,
    duration,
    print_rotated,
    print_secret,
    print_tokens,
    token_name,
)
from pjai.sync.server.audit import local_actor
from pjai.sync.server.sockets import HEAD_TIMEOUT_S

__all__ = ["app", "serve"]

app = typer.Typer(help="The web app's login.", no_args_is_help=True)


def serve(
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    host: Annotated[
        str, typer.Option(help="Address to listen on; off loopback a login is required.")
    ] = "127.0.0.1",
    port: PortOpt = 8080,
    session_hours: Annotated[
        float,
        typer.Option(
            help="How long a login lasts (off loopback); sessions begun to last longer are "
            "shortened to it, as `pjai web token list` then shows."
        ),
    ] = 12.0,
    max_upload_mb: Annotated[
        int,
        typer.Option(
            help="The largest upload taken, in MB (the devtools' archive import); a "
            "larger one is refused (413) before more of it is read: import such an "
            "archive with `pjai import` on the server."
        ),
    ] = MAX_UPLOAD_MB,
    upload_timeout_s: Annotated[
        float,
        typer.Option(
            help=f"How long an upload may take to send each next "
            f"{UPLOAD_PROGRESS_BYTES // 1024} KiB before it is ended (408) and its place "
            "freed for another.",
        ),
    ] = UPLOAD_TIMEOUT_S,
    head_timeout_s: Annotated[
        float,
        typer.Option(
            help="How long a connection may take to send a request's head, from its "
            "opening and from the end of the answer before; then it is closed."
        ),
    ] = HEAD_TIMEOUT_S,
    as_json: JsonFlag = False,
) -> None:
    """Run the web app (dashboard, personas, memories, conversations) on this data
    directory until interrupted; prints its address (with --json as {"url": ...})."""
    from pjai.web import serve as run  # NiceGUI loads only for this command

    def announce(url: str) -> None:
        if as_json:
            print_json({"url": url})
        else:
            console.print(f"PJai web app on {url}", highlight=False)

    directory = data_directory(data_dir, create=True)
    with reported():
        run(
            directory,
            host=host,
            port=port,
            session_hours=session_hours,
            max_upload_mb=max_upload_mb,
            upload_timeout_s=upload_timeout_s,
            head_timeout_s=head_timeout_s,
            announce=announce,
        )


@app.command("passphrase")
def passphrase(
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the passphrase.")] = False,
) -> None:
    """Set the passphrase the web app asks for when it listens on anything but loopback
    (asked twice at a terminal, else read from the first line of standard input)."""
    found = data_directory(data_dir, create=True).passphrase()
    if clear:
        removed = found.clear()
        console.print("Passphrase removed." if removed else "No passphrase was set.")
    else:
        if interactive():
            given = typer.prompt("Passphrase", hide_input=True, confirmation_prompt=True)
        else:
            given = sys.stdin.readline().rstrip("\r\n")
        with reported():
            found.set(given)
        console.print(f"Passphrase set ({found.path}).")
    with _sessions(data_dir) as sessions:
        ended = sessions.end_passphrase_sessions(actor="pjai web passphrase")
    if ended:
        console.print(f"Signed out {ended} session(s) the old passphrase started.")


token_app = typer.Typer(
    help="The web app's sessions and access tokens (a login off loopback).",
    no_args_is_help=True,
)
app.add_typer(token_app, name="token")


@contextmanager
def _sessions(data_dir: Path, *, create: bool = False) -> Iterator[Any]:
    """The web app's sessions; only ``token create`` makes a missing data directory."""
    from pjai.app.websessions import WebSessions  # loads the token machinery

    directory = data_directory(data_dir, create=create)
    with reported(), WebSessions.open(directory.path) as sessions:
        yield sessions


AccessTokenName = Annotated[
    str | None,
    typer.Option("--name", help="A name to recognise the token by (required).", show_default=False),
]
"""``--name`` of an access token, which needs one: taken with its older spelling
``--label`` by :func:`~pjai.cli.tokens.token_name`, so it is checked there."""


@token_app.command("create")
def create_token(
    name: AccessTokenName = None,
    expires_in: ExpiresIn = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
    label: LabelAlias = None,
) -> None:
    """Create an access token and print its secret, the only time it is shown: typed at
    the web app's login form instead of the passphrase, it starts a session that lasts
    no longer than the token."""
    given = token_name(name, label, required=True)
    with _sessions(data_dir, create=True) as sessions:
        secret, token = sessions.create_access(
            given, expires_in=duration(expires_in), actor=local_actor()
        )
    print_secret(secret, token, f"Created access token {token.id}.", as_json=as_json)


@token_app.command("list")
@listing
def list_tokens(
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    fmt: Format = "table",
) -> None:
    """List the web app's sessions (labelled "session") and access tokens, revoked and
    expired ones too (never their secrets), each with its state: live, expired or
    revoked. A session an access token started ends when that token does."""
    with _sessions(data_dir) as sessions:
        found = sessions.list()
    print_tokens(found, fmt, scoped=False)


@token_app.command("revoke")
def revoke_token(
    token_id: Annotated[str, typer.Argument(metavar="ID", help="The session's or token's id.")],
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Revoke a session or access token: that browser's next request goes to the login
    form."""
    with _sessions(data_dir) as sessions:
        token = sessions.revoke(token_id, actor=local_actor())
    print_result(dataclasses.asdict(token), as_json, f"Revoked {token.label} {token.id}.")


@token_app.command("rotate")
def rotate_token(
    token_id: Annotated[str, typer.Argument(metavar="ID", help="The access token's id.")],
    overlap: Overlap = "1h",
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Replace an access token with a new one, printing the new secret once; the old one
    keeps working for the overlap, and so do the sessions it started, no longer."""
    grace = duration(overlap)
    assert grace is not None
    with _sessions(data_dir) as sessions:
        secret, new, old = sessions.rotate(token_id, overlap=grace, actor=local_actor())
    print_rotated(secret, new, old, "access token", as_json=as_json)
