"""`pjai security`: encrypt a data directory's sensitive fields and manage its keys."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from pjai.app import Personas
from pjai.app.keysync import join_store, sync_keys
from pjai.app.security import (
    SecurityReport,
    change_passphrase,
    forget_key,
    init_security,
    new_recovery_code,
    recover,
    remember_key,
    rotate_key,
    security_status,
)
from pjai.cli.common import (
    DEFAULT_DATA_DIR,
    DataDirOption,
    JsonFlag,
    PersonaArg,
    console,
    data_directory,
    interactive,
    open_manager,
    print_json,
    print_result,
    reported,
)

__all__ = ["app"]

app = typer.Typer(
    help="Encryption of sensitive fields and its keys (docs/security.md). An encrypted "
    "directory opens with PJAI_PASSPHRASE or PJAI_KEY_FILE set, or with its key kept in "
    "the OS keyring (`pjai security remember`).",
    no_args_is_help=True,
)

KeyFileOption = Annotated[
    Path | None,
    typer.Option(
        "--key-file",
        help="A key file that unlocks the store key too (made, mode 600, if missing). "
        "Keep it off this machine's data directory.",
        dir_okay=False,
    ),
]


def _ask(prompt: str) -> str:
    """A passphrase: asked twice at a terminal, else the first line of standard input."""
    if interactive():
        return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=True))
    return sys.stdin.readline().rstrip("\r\n")


def _recovery_code() -> str:
    """A one-time recovery code: asked at a terminal, else the first line of standard input."""
    if interactive():
        return str(typer.prompt("Recovery code", hide_input=True))
    return sys.stdin.readline().strip()


@app.command("init")
def init(
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    key_file: KeyFileOption = None,
    no_passphrase: Annotated[
        bool, typer.Option("--no-passphrase", help="Lock with the key file only.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Encrypt the sensitive fields of every new event (memory text, persona description
    and personality, conversations, bookmarks) with a new key ring, locked by a
    passphrase (asked, or read from standard input) and/or a key file."""
    if no_passphrase and key_file is None:
        raise typer.BadParameter("--no-passphrase needs --key-file", param_hint="--key-file")
    directory = data_directory(data_dir, create=True)
    passphrase = None if no_passphrase else _ask("Passphrase")
    with reported():
        report = init_security(directory, passphrase=passphrase, key_file=key_file)
    if as_json:
        print_json(report)
        return
    console.print(
        f"Encrypted: new events' sensitive fields are sealed (store key {report.store_key}). "
        "Events written before stay as they were. Set PJAI_PASSPHRASE or PJAI_KEY_FILE to "
        "open the directory.",
        highlight=False,
    )


@app.command("status")
def status(data_dir: DataDirOption = DEFAULT_DATA_DIR, as_json: JsonFlag = False) -> None:
    """Whether the directory is encrypted and, when it unlocks, its locks and keys."""
    with reported():
        report = security_status(data_directory(data_dir))
    if as_json:
        print_json(report)
        return
    console.print(_status_text(report), highlight=False)


def _status_text(report: SecurityReport) -> str:
    if not report.encrypted:
        return "not encrypted (`pjai security init` encrypts new events' sensitive fields)"
    if not report.unlocked:
        why = f" ({report.locked_because})" if report.locked_because else ""
        return f"encrypted, locked{why}: set PJAI_PASSPHRASE or PJAI_KEY_FILE to see its keys"
    keys = sum(report.data_keys.values())
    return (
        f"encrypted; unlocks with: {', '.join(report.locks)}; store key {report.store_key}; "
        f"{keys} data keys for {len(report.data_keys)} personas or the store; "
        f"{report.erased} erased; "
        + ("kept in the OS keyring; " if report.remembered else "")
        + "SQL primary "
        + ("sealed (ciphertext of the sensitive columns)" if report.sql_sealed else "plaintext")
    )


@app.command("passphrase")
def passphrase(data_dir: DataDirOption = DEFAULT_DATA_DIR) -> None:
    """Change the passphrase (the store key is unlocked with PJAI_PASSPHRASE or
    PJAI_KEY_FILE, then locked with the new one; no data is re-encrypted)."""
    directory = data_directory(data_dir)
    new = _ask("New passphrase")
    with reported():
        change_passphrase(directory, new)
    console.print("Passphrase changed.")


@app.command("recovery-code")
def recovery_code(data_dir: DataDirOption = DEFAULT_DATA_DIR, as_json: JsonFlag = False) -> None:
    """Print a new one-time recovery code that unlocks the store key (write it down:
    it is shown once; an older code stops working)."""
    with reported():
        code = new_recovery_code(data_directory(data_dir))
    if as_json:
        print_json({"recovery_code": code})
    else:
        console.print(code, highlight=False)


@app.command("recover")
def recover_command(data_dir: DataDirOption = DEFAULT_DATA_DIR) -> None:
    """Unlock with the one-time recovery code and set a new passphrase (asked at a
    terminal, else read from standard input: the code on the first line, the new
    passphrase on the second). The code is used up."""
    directory = data_directory(data_dir)
    code = _recovery_code()
    new = _ask("New passphrase")
    with reported():
        recover(directory, code, new)
    console.print("Recovered: the directory now opens with the new passphrase.")


@app.command("remember")
def remember(data_dir: DataDirOption = DEFAULT_DATA_DIR) -> None:
    """Keep the store key in the OS keyring (unlocked with PJAI_PASSPHRASE or
    PJAI_KEY_FILE): this device then opens the directory without the passphrase, as
    long as the logged-in user can read that keyring."""
    with reported():
        remember_key(data_directory(data_dir))
    console.print(
        "The store key is in the OS keyring: this directory opens here without the "
        "passphrase (`pjai security forget` takes it out).",
        highlight=False,
    )


@app.command("forget")
def forget(data_dir: DataDirOption = DEFAULT_DATA_DIR) -> None:
    """Take the store key out of the OS keyring: the passphrase or key file is needed
    again."""
    with reported():
        removed = forget_key(data_directory(data_dir))
    console.print(
        "Removed the store key from the OS keyring."
        if removed
        else "The OS keyring did not hold this directory's store key."
    )


ServerUrl = Annotated[str, typer.Argument(help="The sync server: http://host:8765.")]
StoreOption = Annotated[str, typer.Option("--store-id", help="The store the keys are for.")]
TokenOption = Annotated[str, typer.Option("--token", help="A token of the store.")]


@app.command("join")
def join(
    url: ServerUrl,
    store_id: StoreOption,
    token: TokenOption = "",
    with_code: Annotated[
        bool,
        typer.Option("--recovery-code", help="Join with a one-time recovery code."),
    ] = False,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Make this new device's key ring from the keys the store's devices share on the
    sync server, opened by the store's passphrase (asked, or read from standard
    input), or with --recovery-code by a one-time recovery code (the code, then this
    device's new passphrase; the code is used up); then `pjai sync connect` syncs it
    like the others."""
    directory = data_directory(data_dir, create=True)
    code = None
    if with_code:
        code = _recovery_code()
        passphrase = _ask("New passphrase for this device")
    elif interactive():
        passphrase = str(typer.prompt("The store's passphrase", hide_input=True))
    else:
        passphrase = sys.stdin.readline().rstrip("\r\n")
    with reported():
        done = join_store(
            directory,
            url,
            token=token,
            store_id=store_id,
            passphrase=passphrase,
            recovery_code=code,
        )
    print_result(
        done,
        as_json,
        f"Joined: this device holds the store's key ring ({done.came} personas' keys). "
        "Set PJAI_PASSPHRASE and run `pjai sync connect` to sync.",
    )


@app.command("share")
def share(
    url: ServerUrl,
    store_id: StoreOption,
    token: TokenOption = "",
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Exchange keys with the sync server now (`pjai sync connect` does it as it
    connects): share this device's, take the others', carry out erasures both ways."""
    directory = data_directory(data_dir)
    with reported(), directory.key_ring() as ring:
        done = sync_keys(ring, url, token=token, store_id=store_id, directory=directory.path)
    if as_json:
        print_json(done)
        return
    console.print(
        f"Shared {done.pushed} keys, took {done.came}; erased here {done.erased_here} "
        f"personas erased elsewhere; deleted {done.deleted_there} erased keys there.",
        highlight=False,
    )


@app.command("rotate")
def rotate(
    persona: PersonaArg, data_dir: DataDirOption = DEFAULT_DATA_DIR, as_json: JsonFlag = False
) -> None:
    """Give the persona a new data key for its future events (older ones stay readable)."""
    with open_manager(data_dir) as manager:
        persona_id = Personas(manager).resolve(persona)
    with reported():
        key_id = rotate_key(data_directory(data_dir), persona_id)
    made = {"persona_id": persona_id, "key_id": key_id}
    print_result(made, as_json, f"New data key {key_id} for {persona_id}.")
