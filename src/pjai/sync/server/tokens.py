"""Bearer tokens of the sync server: each maps to a store id (or every store) and a role.

Only a SHA-256 digest of a token is stored; the secret is shown once, when created.
Roles: ``read`` pulls, ``write`` also pushes, ``admin`` also reads the server's
metrics. Tokens are long random strings, so a plain digest is safe to keep. A token may
expire; rotating one makes a new token for the same store and role and lets the old
one live on for an overlap, so that clients move over without downtime. Creating,
rotating and revoking a token is recorded in the server's audit trail
(:mod:`pjai.sync.server.audit`) in the same transaction.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from pjai.errors import ConfigError
from pjai.schema.types import from_iso, new_id, to_iso, utc_now
from pjai.sync.protocol import MAX_ID_BYTES, Role, nameable
from pjai.sync.server.audit import record
from pjai.sync.server.tables import audit, ensure_tables, select_fields, tokens, transaction

__all__ = [
    "ROLES",
    "RateLimiter",
    "Role",
    "Token",
    "TokenStore",
    "can",
    "check_new_token",
    "digest",
]

ROLES: tuple[Role, ...] = ("read", "write", "admin")
PREFIX = "pjai_"


@dataclass(frozen=True, slots=True)
class Token:
    """A token as listed: never the secret."""

    id: str
    store_id: str
    role: Role
    label: str
    created_at: str
    revoked_at: str | None
    expires_at: str | None = None
    """When it stops working by itself (ISO 8601, UTC); ``None``: until revoked."""

    def live(self, now: str | None = None) -> bool:
        """Whether the token works at ``now`` (ISO 8601, UTC; default: now): not revoked,
        not expired."""
        return _live(self, to_iso(utc_now()) if now is None else now)


def can(role: str, wanted: Role) -> bool:
    """Whether ``role`` includes ``wanted`` (read < write < admin)."""
    return role in ROLES and ROLES.index(role) >= ROLES.index(wanted)


def digest(secret: str) -> str:
    """What the server keeps of a token's secret, and knows it by: its SHA-256 digest."""
    return hashlib.sha256(secret.encode()).hexdigest()


_SELECT = select_fields(tokens, Token)

KEPT_BUCKETS = 1024
"""How many rate-limit buckets are kept before the full ones are dropped."""
"""A token's public fields."""


def check_new_token(store_id: str, role: str, expires_in: timedelta | None = None) -> None:
    """:class:`ConfigError` naming what is wrong with a token asked for, before anything
    is made (:meth:`TokenStore.create` checks it too)."""
    if role not in ROLES:
        raise ConfigError(f"role {role!r}: use read, write or admin")
    if not store_id.strip():
        raise ConfigError("a token needs a store id, or * for every store")
    if not nameable(store_id):
        # No hello could name that store: the token would open nothing.
        shown = repr(store_id) if len(store_id) <= 40 else f"{store_id[:40]!r}…"
        raise ConfigError(
            f"store id {shown}: a store id has 1 to {MAX_ID_BYTES} bytes (UTF-8) and no NUL "
            "character, as a client's hello names it"
        )
    if expires_in is not None and expires_in <= timedelta(0):
        raise ConfigError(f"a token must live for some time, not {expires_in}")


class TokenStore:
    """Tokens in the sync server's database (or another holding its token and audit
    tables: the web app's sessions)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        ensure_tables(engine, (tokens, audit))

    def create(
        self,
        store_id: str,
        role: Role,
        label: str = "",
        *,
        expires_in: timedelta | None = None,
        not_after: datetime | None = None,
        actor: str | None = None,
    ) -> tuple[str, Token]:
        """A new token for ``store_id`` (``*``: every store); returns its secret once.

        ``expires_in``: it stops working that long from now, and at ``not_after`` at the
        latest. ``actor``: who creates it, for the audit trail.
        """
        check_new_token(store_id, role, expires_in)
        with transaction(self.engine, "creating a token", write=True) as conn:
            secret, token = _insert(conn, store_id, role, label, expires_in, not_after)
            record(conn, "token.create", token, at=token.created_at, actor=actor)
        return secret, token

    def rotate(
        self,
        token_id: str,
        *,
        overlap: timedelta = timedelta(hours=1),
        expires_in: timedelta | None = None,
        actor: str | None = None,
    ) -> tuple[str, Token, Token]:
        """A new token for the same store, role and label as the live token
        ``token_id``, whose secret is returned once, living as long as the old one did
        unless ``expires_in`` says otherwise; the old one works for ``overlap`` more (or
        until it expires, if sooner), so clients can move over without downtime.
        Returns the secret, the new token and the old one as it now is."""
        if overlap < timedelta(0):
            raise ConfigError(f"the overlap cannot be negative, got {overlap}")
        token_id = self.resolve(token_id)
        now = utc_now()
        with transaction(self.engine, "rotating a token", write=True) as conn:
            row = conn.execute(_SELECT.where(tokens.c.id == token_id)).first()
            old = None if row is None else Token(*row)
            if old is None or not _live(old, to_iso(now)):
                raise ConfigError(f"no live token {token_id!r}")
            lifetime = (  # the new one lives as long as the old one was made to
                None
                if old.expires_at is None
                else from_iso(old.expires_at) - from_iso(old.created_at)
            )
            ends = to_iso(now + overlap)
            if old.expires_at is None or ends < old.expires_at:
                conn.execute(
                    sa.update(tokens).where(tokens.c.id == token_id).values(expires_at=ends)
                )
                old = Token(*conn.execute(_SELECT.where(tokens.c.id == token_id)).one())
            secret, new = _insert(conn, old.store_id, old.role, old.label, expires_in or lifetime)
            record(conn, "token.rotate", old, at=new.created_at, actor=actor)
            record(conn, "token.create", new, at=new.created_at, actor=actor)
        return secret, new, old

    def resolve(self, ref: str) -> str:
        """The id of the token ``ref`` names: its id, or the start of one id only (ids
        made close together share their first characters)."""
        if not ref:
            raise ConfigError("give a token's id, or its first characters")
        query = sa.select(tokens.c.id).where(tokens.c.id.startswith(ref, autoescape=True))
        with transaction(self.engine, "finding a token") as conn:
            found = list(conn.scalars(query.order_by(tokens.c.id).limit(11)))
        if ref in found or len(found) == 1:
            return ref if ref in found else found[0]
        if not found:
            raise ConfigError(f"no token {ref!r}")
        more = " …" if len(found) > 10 else ""
        raise ConfigError(
            f"{ref!r} could be any of these tokens: {', '.join(found[:10])}{more}; give more "
            "of the id"
        )

    def get(self, token_id: str) -> Token | None:
        """The token whose id is ``token_id`` (exactly), revoked or expired too; ``None``
        if there is none."""
        with transaction(self.engine, "finding a token") as conn:
            row = conn.execute(_SELECT.where(tokens.c.id == token_id)).first()
        return None if row is None else Token(*row)

    def list(self) -> list[Token]:
        """Every token, newest last."""
        query = _SELECT.order_by(tokens.c.created_at, tokens.c.id)
        with transaction(self.engine, "listing tokens") as conn:
            return [Token(*row) for row in conn.execute(query)]

    def revoke(self, token_id: str, *, actor: str | None = None) -> Token:
        """Revoke a token (its id or a unique start of it): new connections are refused
        at once, open ones within :data:`pjai.sync.server.session.RECHECK_S` (their next
        frame in or out, pushes, events and presence alike, closes them).
        ``actor``: who revokes it, for the audit trail."""
        token_id = self.resolve(token_id)
        revoked_at = to_iso(utc_now())
        with transaction(self.engine, "revoking a token", write=True) as conn:
            done = conn.execute(
                sa.update(tokens)
                .where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None))
                .values(revoked_at=revoked_at)
            )
            if done.rowcount != 1:
                raise ConfigError(f"no live token {token_id!r}")
            row = conn.execute(_SELECT.where(tokens.c.id == token_id)).one()
            token = Token(*row)
            record(conn, "token.revoke", token, at=revoked_at, actor=actor)
        return token

    def shorten(self, token_id: str, ends: datetime, *, actor: str | None = None) -> bool:
        """Make the live token ``token_id`` (an exact id) expire at ``ends`` if it would
        live longer (a past ``ends`` expires it now); whether this did it. ``actor``: who
        shortens it, for the audit trail."""
        at = to_iso(utc_now())
        limit = to_iso(ends)
        longer = sa.or_(tokens.c.expires_at.is_(None), tokens.c.expires_at > limit)
        with transaction(self.engine, "shortening a token", write=True) as conn:
            done = conn.execute(
                sa.update(tokens)
                .where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None), longer)
                .where(sa.or_(tokens.c.expires_at.is_(None), tokens.c.expires_at > at))
                .values(expires_at=limit)
            )
            if done.rowcount != 1:
                return False
            token = Token(*conn.execute(_SELECT.where(tokens.c.id == token_id)).one())
            record(conn, "token.shorten", token, at=at, actor=actor)
        return True

    def check(self, secret: str) -> Token | None:
        """The live token (not revoked, not expired) with this secret, if any."""
        if not secret.startswith(PREFIX):
            return None
        query = _SELECT.where(tokens.c.digest == digest(secret), tokens.c.revoked_at.is_(None))
        with transaction(self.engine, "checking a token") as conn:
            row = conn.execute(query).first()
        token = Token(*row) if row is not None else None
        return token if token is not None and _live(token, to_iso(utc_now())) else None


def _live(token: Token, now: str) -> bool:
    """Not revoked, and not expired at ``now`` (fixed-width ISO texts compare as times)."""
    return token.revoked_at is None and (token.expires_at is None or now < token.expires_at)


def _insert(
    conn: sa.Connection,
    store_id: str,
    role: Role,
    label: str,
    expires_in: timedelta | None,
    not_after: datetime | None = None,
) -> tuple[str, Token]:
    secret = PREFIX + secrets.token_urlsafe(32)
    now = utc_now()
    ends = [t for t in (None if expires_in is None else now + expires_in, not_after) if t]
    expires = to_iso(min(ends)) if ends else None
    token = Token(new_id(), store_id, role, label, to_iso(now), None, expires)
    conn.execute(
        sa.insert(tokens).values(
            id=token.id,
            digest=digest(secret),
            store_id=store_id,
            role=role,
            label=label,
            created_at=token.created_at,
            expires_at=expires,
        )
    )
    return secret, token


class RateLimiter:
    """Token buckets per key: ``rate`` a second (events, or bytes), bursts up to ``burst``.

    A bucket that has filled up again is the same as none: past :data:`KEPT_BUCKETS`
    buckets such ones are dropped, so that keys seen once (store ids pushed to without
    tokens) do not pile up."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._prune_at = KEPT_BUCKETS
        self._lock = threading.Lock()

    def take(self, key: str, amount: float) -> float:
        """Take ``amount``; returns 0 if allowed, else the seconds to wait before retrying."""
        now = time.monotonic()
        with self._lock:
            level = self._level(key, now)
            if amount <= level:
                self._buckets[key] = (level - amount, now)
                return 0.0
            self._buckets[key] = (level, now)
            return (amount - level) / self.rate

    def charge(self, key: str, amount: float) -> float:
        """Take ``amount`` whatever is left, into debt if need be; returns the seconds
        until the debt is paid (0 when there is none), which the caller waits."""
        now = time.monotonic()
        with self._lock:
            level = self._level(key, now) - amount
            self._buckets[key] = (level, now)
            return max(0.0, -level / self.rate)

    def _level(self, key: str, now: float) -> float:
        """What ``key``'s bucket holds at ``now`` (under the lock)."""
        level, since = self._buckets.get(key, (self.burst, now))
        if len(self._buckets) >= self._prune_at and key not in self._buckets:
            self._forget_full(now)
            # Pruning again at twice what is left keeps its cost constant per key.
            self._prune_at = max(KEPT_BUCKETS, 2 * len(self._buckets))
        return min(self.burst, level + (now - since) * self.rate)

    def __len__(self) -> int:
        """How many buckets are kept."""
        return len(self._buckets)

    def _forget_full(self, now: float) -> None:
        self._buckets = {
            key: (level, since)
            for key, (level, since) in self._buckets.items()
            if level + (now - since) * self.rate < self.burst
        }
