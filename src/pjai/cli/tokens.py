"""Options and output of the access-token commands, the sync server's
(``pjai sync-server token ...``) and the web app's (``pjai web token ...``)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.table import Column, Table

from pjai.cli.common import errors, print_json
from pjai.cli.output import Format, id_column, print_rows, short_column, wide_terminal
from pjai.schema.types import to_iso, utc_now
from pjai.sync.server import Token

__all__ = [
    "ExpiresIn",
    "LabelAlias",
    "Overlap",
    "TokenName",
    "duration",
    "print_rotated",
    "print_secret",
    "print_tokens",
    "token_name",
    "token_state",
    "tokens_table",
    "when",
]


def _a_duration(text: str | None) -> str | None:
    """Check a duration as its option is read (a Typer callback: the error names it)."""
    duration(text)
    return text


ExpiresIn = Annotated[
    str | None,
    typer.Option(
        "--expires-in",
        help="The token stops working after this long: 30d, 12h, 90m, 45s (default: never).",
        show_default=False,
        callback=_a_duration,
    ),
]
Overlap = Annotated[
    str,
    typer.Option(help="How long the old token keeps working: 1h, 30m, 0s.", callback=_a_duration),
]
"""``--overlap``: a :func:`duration`."""


TokenName = Annotated[
    str | None,
    typer.Option("--name", help="A name to recognise the token by.", show_default=False),
]
"""``--name``: what a token is called in lists (:func:`token_name`)."""
LabelAlias = Annotated[str | None, typer.Option("--label", hidden=True)]
"""``--label``: the name's spelling in earlier versions of ``pjai web token create``,
still taken (hidden from the help) so that scripts written for it go on working."""


def token_name(name: str | None, label: str | None, *, required: bool = False) -> str:
    """The name given by ``--name`` or its older spelling ``--label``: both with
    different names is a usage error, and so is neither when a name is ``required``
    (else the name is empty)."""
    if name is not None and label is not None and name != label:
        raise typer.BadParameter(
            f"--name {name!r} and --label {label!r}: --label is the old spelling of --name; "
            "give one",
            param_hint="'--name'",
        )
    given = name if name is not None else label
    if given is None:
        if required:
            raise typer.BadParameter(
                "missing: give the token a name to recognise it by", param_hint="'--name'"
            )
        return ""
    return given


MAX_DURATION_S = 36_500 * 86_400
"""The longest duration taken: a hundred years."""


def duration(text: str | None) -> timedelta | None:
    """``30d``, ``12h``, ``90m`` or ``45s`` as a timedelta (``None`` stays ``None``)."""
    if text is None:
        return None
    unit_s = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
    number, unit = text[:-1], text[-1:]
    if unit not in unit_s or not number.isdigit():
        raise typer.BadParameter(f"{text!r}: give a whole number and d, h, m or s, like 30d")
    seconds = int(number) * unit_s[unit]
    if seconds > MAX_DURATION_S:  # an expiry must stay a date
        raise typer.BadParameter(f"{text!r}: too long a time; give at most 36500d")
    return timedelta(seconds=seconds)


def when(iso: str | None) -> str:
    """An ISO time as ``YYYY-MM-DD HH:MM`` (blank for none)."""
    return "" if iso is None else f"{iso[:10]} {iso[11:16]}"


def token_state(token: Token, now: str) -> str:
    """Whether ``token`` works at ``now`` (ISO 8601, UTC): ``live``, ``expired`` or
    ``revoked``."""
    if token.revoked_at is not None:
        return "revoked"
    return "live" if token.live(now) else "expired"


def tokens_table(tokens: list[Token], *, scoped: bool = True, now: str | None = None) -> Table:
    """Tokens as a table (their ids whole: revoking needs them), each with its state at
    ``now`` (default: now); with ``scoped``, the store and role each is for (a sync
    server's tokens; a web login has neither). At a narrow terminal the times are left
    out: the state says whether a token works."""
    at = to_iso(utc_now()) if now is None else now
    wide = wide_terminal()
    scope = ["store", "role"] if scoped else []
    times = [Column(h, min_width=10) for h in ("created (UTC)", "revoked", "expires")]
    table = Table(
        id_column(),  # revoke needs it whole
        "name",
        *scope,
        *(times if wide else []),
        short_column("state"),
    )
    for t in tokens:
        cells = [t.id, t.label, *([t.store_id, t.role] if scoped else [])]
        if wide:
            cells += [when(t.created_at), when(t.revoked_at), when(t.expires_at)]
        table.add_row(*cells, token_state(t, at))
    return table


def print_tokens(tokens: list[Token], fmt: Format, *, scoped: bool = True) -> None:
    """List tokens in ``fmt`` (as :func:`~pjai.cli.output.print_rows` does), each with
    its state now: an expiry or revocation that has passed is said, not left to be
    worked out from the times (shown to the minute)."""
    now = to_iso(utc_now())
    rows: list[dict[str, Any]] = [
        {**dataclasses.asdict(t), "state": token_state(t, now)} for t in tokens
    ]
    print_rows(rows, tokens_table(tokens, scoped=scoped, now=now), fmt)


def print_secret(secret: str, token: Token, made: str, *, as_json: bool, **extra: str) -> None:
    """Show a new token's secret, once: with its fields as JSON, or alone on stdout (so
    that ``SECRET=$(pjai ... token create ...)`` works) with ``made`` on stderr."""
    if as_json:
        print_json({"secret": secret, **dataclasses.asdict(token), **extra})
        return
    print(secret)
    errors.print(f"{made} Keep the secret above: it is not shown again.", highlight=False)


def print_rotated(secret: str, new: Token, old: Token, what: str, *, as_json: bool) -> None:
    """Show the secret of ``new``, the ``what`` (``token``, ``access token``) made to
    replace ``old``, as :func:`print_secret` does."""
    made = (
        f"Created {what} {new.id} to replace {old.id}, which works until "
        f"{when(old.expires_at)} UTC."
    )
    print_secret(secret, new, made, as_json=as_json, replaces=old.id)
