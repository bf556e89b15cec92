"""The sync server's audit trail: what changed in its configuration, when and by whom.

Creating or revoking a token leaves an entry, written in the same transaction as the
change itself (:class:`~pjai.sync.server.tokens.TokenStore`), in the append-only table
``pjai_sync_audit`` next to the tokens. ``pjai sync-server audit`` lists it.
"""

from __future__ import annotations

import getpass
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import sqlalchemy as sa

from pjai.errors import ConfigError
from pjai.sync.server.tables import audit, ensure_tables, select_fields, tokens, transaction

if TYPE_CHECKING:
    from pjai.sync.server.tokens import Token

__all__ = ["ACTIONS", "AuditEntry", "AuditTrail", "local_actor", "record"]

Action = Literal["token.create", "token.revoke", "token.rotate", "token.shorten"]
ACTIONS: tuple[Action, ...] = ("token.create", "token.revoke", "token.rotate", "token.shorten")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One change to the server's configuration."""

    seq: int
    """Its place in the trail (1, 2, ...; a gap is a change rolled back)."""
    at: str
    """When, in UTC (RFC 3339)."""
    action: str
    """``token.create``, ``token.revoke``, ``token.rotate`` or ``token.shorten`` (its
    expiry brought forward)."""
    token_id: str
    token_label: str
    store_id: str
    """The token's store id (``*``: every store)."""
    role: str
    actor: str | None
    """Who made the change (``user@host`` from the command line), when known."""


def record(
    conn: sa.Connection, action: Action, token: Token, *, at: str, actor: str | None
) -> None:
    """Add an entry about ``token``, inside the transaction of the change it records."""
    conn.execute(
        sa.insert(audit).values(
            at=at,
            action=action,
            token_id=token.id,
            token_label=token.label,
            store_id=token.store_id,
            role=token.role,
            actor=actor,
        )
    )


_SELECT = select_fields(audit, AuditEntry)


class AuditTrail:
    """The audit trail in the sync server's database."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        ensure_tables(engine, (tokens, audit))

    def list(self, *, limit: int | None = None, token_id: str | None = None) -> list[AuditEntry]:
        """The entries, oldest first: the newest ``limit`` of them, of one token if given."""
        if limit is not None and limit < 1:
            raise ConfigError(f"limit {limit}: give at least 1, or no limit")
        query = _SELECT.order_by(audit.c.seq.desc())
        if token_id is not None:
            query = query.where(audit.c.token_id == token_id)
        if limit is not None:
            query = query.limit(limit)
        with transaction(self.engine, "reading the audit trail") as conn:
            rows = conn.execute(query).all()
        return [AuditEntry(*row) for row in reversed(rows)]


def local_actor() -> str | None:
    """This process's user and machine (``user@host``), for changes made here."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name in the environment nor the password file
        return None
    return f"{user}@{socket.gethostname()}"
