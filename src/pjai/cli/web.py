"""`pjai serve` runs the web app; `pjai web passphrase` sets the login it asks for off
loopback."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from pjai.cli.common import (
    DEFAULT_DATA_DIR,
    DataDirOption,
    console,
    data_directory,
    interactive,
    reported,
)

__all__ = ["app", "serve"]

app = typer.Typer(help="The web app's login.", no_args_is_help=True)


def serve(
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    host: Annotated[
        str, typer.Option(help="Address to listen on; off loopback a login is required.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8080,
    session_hours: Annotated[
        float, typer.Option(help="How long a login lasts (off loopback).")
    ] = 12.0,
) -> None:
    """Run the web app (dashboard, personas, memories, conversations) on this data
    directory until interrupted; prints its address."""
    from pjai.web import serve as run  # NiceGUI loads only for this command

    directory = data_directory(data_dir, create=True)
    with reported():
        run(directory, host=host, port=port, session_hours=session_hours, announce=console.print)


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
        return
    if interactive():
        given = typer.prompt("Passphrase", hide_input=True, confirmation_prompt=True)
    else:
        given = sys.stdin.readline().rstrip("\r\n")
    with reported():
        found.set(given)
    console.print(f"Passphrase set ({found.path}).")
