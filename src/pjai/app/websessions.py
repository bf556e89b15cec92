"""The web app's sessions and access tokens, on the sync server's token machinery.

A login off loopback (``pjai serve --host ...``) starts a session: a token of the
``web`` scope with the session's lifetime as its expiry, its secret in the browser's
cookie. Access tokens (``pjai web token create``) are tokens of the same scope that a
person types at the login form instead of the passphrase, to get a session no longer
than the token lives (its label names the token): however the token ends (it expires,
a rotation's overlap runs out, it is revoked), the sessions it started end with it.
Both are kept in ``web-sessions.db`` in the data directory, as SHA-256 digests
(:class:`pjai.sync.server.tokens.TokenStore`): sessions survive a restart of the app,
expire by themselves, can be listed, revoked (the next request of that browser goes to
the login form) and rotated, and each change is in the file's audit trail with who
made it. An app started with a shorter lifetime (``--session-hours``) stores the earlier
end of each session begun to last longer, so the list shows when each session ends
whichever lifetime the app runs with.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine

from pjai.errors import ConfigError
from pjai.hybrid.fresh import opening
from pjai.resource import Resource
from pjai.schema.limits import LATEST
from pjai.schema.types import from_iso, to_iso, utc_now
from pjai.sql.engine import PoolConfig, create_sql_engine, sqlite_url
from pjai.sync.server.audit import AuditEntry, AuditTrail
from pjai.sync.server.tokens import Token, TokenStore

__all__ = ["SESSION_LABEL", "WEB_SCOPE", "WEB_SESSIONS_FILE", "WebSessions"]

WEB_SESSIONS_FILE = "web-sessions.db"
"""The web app's sessions and access tokens, in the data directory."""

WEB_SCOPE = "web"
"""The store id of the web app's tokens: they open the web app and nothing else."""

SESSION_LABEL = "session"
"""How a session's label begins (an access token's label is the person's)."""

_POOL = PoolConfig(size=2, overflow=4, pre_ping=False)


def _via(token_id: str) -> str:
    """How a session's label names the access token that started it."""
    return f"(token {token_id})"


_VIA = re.compile(r"\(token ([^\s()]+)\)\Z")


def _started_by(session: Token) -> str | None:
    """The id of the access token that started ``session``; ``None`` if the passphrase
    did, or it is an access token."""
    found = _VIA.search(session.label) if session.label.startswith(SESSION_LABEL) else None
    return None if found is None else found[1]


class WebSessions(Resource):
    """Sessions and access tokens of one data directory's web app."""

    def __init__(self, engine: Engine, lifetime_s: float) -> None:
        if lifetime_s <= 0:
            raise ConfigError(f"a session must last some time, not {lifetime_s} s")
        try:  # a session begun now ends within the times a token keeps
            self.lifetime = timedelta(seconds=lifetime_s)
            fits = utc_now() + self.lifetime <= LATEST
        except (OverflowError, ValueError):
            fits = False
        if not fits:
            raise ConfigError(
                f"a session cannot last {lifetime_s / 3600:g} hours: it would end after "
                f"{LATEST.date()}, the last day PJai keeps"
            )
        self.engine = engine
        self.tokens = TokenStore(engine)
        self.audit = AuditTrail(engine)

    @classmethod
    def open(cls, data_dir: Path, lifetime_s: float = 12 * 3600) -> WebSessions:
        """The sessions of the data directory ``data_dir`` (the file is made if missing).
        Refused at once while an import or a backup goes into the directory
        (:func:`~pjai.hybrid.fresh.opening`), which would take the file for its own."""
        with opening(Path(data_dir)):
            engine = create_sql_engine(sqlite_url(Path(data_dir) / WEB_SESSIONS_FILE), _POOL)
            try:
                return cls(engine, lifetime_s)  # makes the file and its tables
            except BaseException:
                engine.dispose()
                raise

    @property
    def lifetime_s(self) -> float:
        """How long a new session lasts, in seconds."""
        return self.lifetime.total_seconds()

    # -- sessions ----------------------------------------------------------------------

    def start(self, label: str = "", *, actor: str | None = None) -> str:
        """A new session's secret (for the cookie)."""
        name = f"{SESSION_LABEL} {label}".strip()
        secret, _ = self.tokens.create(
            WEB_SCOPE, "admin", name, expires_in=self.lifetime, actor=actor or "web login"
        )
        return secret

    def exchange(self, access_token: str, label: str = "") -> str | None:
        """A new session for a live access token (lasting no longer than it does), or
        ``None`` if ``access_token`` is not one."""
        token = self.check(access_token)
        if token is None or token.label.startswith(SESSION_LABEL):
            return None
        name = f"{SESSION_LABEL} {label} {_via(token.id)}".replace("  ", " ")
        secret, _ = self.tokens.create(
            WEB_SCOPE,
            token.role,
            name,
            expires_in=self.lifetime,
            not_after=None if token.expires_at is None else from_iso(token.expires_at),
            actor=f"access token {token.id}",
        )
        return secret

    def check(self, secret: str | None) -> Token | None:
        """The live web token (session or access token) with this secret, if any."""
        if not secret:
            return None
        token = self.tokens.check(secret)
        return token if token is not None and token.store_id == WEB_SCOPE else None

    def hold_to_lifetime(self, *, actor: str | None = None) -> int:
        """Store a shorter end for every live session begun to last longer than
        :attr:`lifetime` (the app now runs with fewer ``--session-hours``): it ends
        :attr:`lifetime` after it began, at once if that is past. The app does this as it
        starts, so that ``pjai web token list`` shows each session ending when the app
        ends it, and a later run with more hours does not bring it back. How many it
        shortened."""
        now = to_iso(utc_now())
        shortened = 0
        for session in self._stored():
            if session.label.startswith(SESSION_LABEL) and session.live(now):
                ends = from_iso(session.created_at) + self.lifetime
                if self.tokens.shorten(session.id, ends, actor=actor):
                    shortened += 1
        return shortened

    def valid(self, secret: str | None) -> bool:
        """Whether ``secret`` is a live session's, begun less than :attr:`lifetime` ago:
        one the passphrase started, or one whose access token is live too."""
        token = self.check(secret)
        if token is None or not token.label.startswith(SESSION_LABEL):
            return False
        if utc_now() - from_iso(token.created_at) >= self.lifetime:
            # Begun when logins lasted longer: the app now runs with a shorter lifetime
            # (``--session-hours``), which ends the sessions already past it too. The
            # app stores those ends as it starts (:meth:`hold_to_lifetime`); this covers
            # a session another process began since.
            return False
        if (token_id := _started_by(token)) is None:
            return True
        # Looked up each time, not copied when the session began: a rotation's overlap
        # shortens the token's life, and a revocation cut short (or one that ran as
        # the token was being exchanged) leaves its sessions unrevoked.
        access = self.tokens.get(token_id)
        return access is not None and access.live()

    def end(self, secret: str) -> None:
        """End the session with this secret (log out); nothing if it is not live."""
        token = self.check(secret)
        if token is not None:
            self._end(token.id, actor="web logout")

    def _end(self, token_id: str, *, actor: str | None) -> bool:
        """Revoke the live token ``token_id`` (an exact id); whether this did it. One
        revoked meanwhile (its browser signed out, another command ended it) is ended
        all the same: not an error that would leave the rest of a list live."""
        try:
            self.tokens.revoke(token_id, actor=actor)
        except ConfigError:
            return False
        return True

    # -- access tokens -----------------------------------------------------------------

    def create_access(
        self, label: str, *, expires_in: timedelta | None = None, actor: str | None = None
    ) -> tuple[str, Token]:
        """A new access token (its secret, shown once, and the token)."""
        if not label.strip() or label.strip().startswith(SESSION_LABEL):
            raise ConfigError(
                f"an access token needs a name to recognise it by, not {label!r} (and not "
                f"one beginning with {SESSION_LABEL!r}, which names sessions)"
            )
        return self.tokens.create(
            WEB_SCOPE, "admin", label.strip(), expires_in=expires_in, actor=actor
        )

    def revoke(self, token_id: str, *, actor: str | None = None) -> Token:
        """Revoke a session or access token: its next request goes to the login form.
        Revoking an access token ends the sessions it started too."""
        revoked = self.tokens.revoke(token_id, actor=actor)
        now = to_iso(utc_now())
        for session in self._stored():
            live = session.revoked_at is None and (
                session.expires_at is None or now < session.expires_at
            )
            if live and _started_by(session) == revoked.id:
                self._end(session.id, actor=actor)
        return revoked

    def end_passphrase_sessions(self, *, actor: str | None = None) -> int:
        """End every live session the passphrase started (when it changes or goes:
        whoever knew the old one is signed out); how many. Sessions an access token
        started stay: revoking the token ends them."""
        now = to_iso(utc_now())
        ended = 0
        for session in self._stored():
            live = session.revoked_at is None and (
                session.expires_at is None or now < session.expires_at
            )
            by_passphrase = session.label.startswith(SESSION_LABEL) and _started_by(session) is None
            if live and by_passphrase and self._end(session.id, actor=actor):
                ended += 1
        return ended

    def rotate(
        self, token_id: str, *, overlap: timedelta, actor: str | None = None
    ) -> tuple[str, Token, Token]:
        """Replace an access token (see :meth:`TokenStore.rotate`): the sessions it
        started end with it, when the overlap does if that comes first. A session is not
        replaced: its secret is in a browser's cookie, not typed at the form."""
        token_id = self.tokens.resolve(token_id)
        found = next((t for t in self.list() if t.id == token_id), None)
        if found is not None and found.label.startswith(SESSION_LABEL):
            raise ConfigError(
                f"{token_id} is a session, not an access token: a new secret for it would "
                "open nothing at the login form; end it with `pjai web token revoke`"
            )
        return self.tokens.rotate(token_id, overlap=overlap, actor=actor)

    def _stored(self) -> list[Token]:
        """Every session and access token as kept, each with its own revocation and
        expiry (:meth:`list` shows a session ending with its access token)."""
        return [t for t in self.tokens.list() if t.store_id == WEB_SCOPE]

    def history(self, limit: int | None = None) -> list[AuditEntry]:
        """The audit trail: logins, logouts, tokens made, rotated and revoked."""
        return self.audit.list(limit=limit)

    def close(self) -> None:
        """Release the file."""
        self.engine.dispose()

    # Last: below it, ``list`` would name this method in annotations.
    def list(self) -> list[Token]:
        """Every session and access token, revoked and expired ones too, oldest first.
        A session an access token started expires when that token ends, if sooner than
        its own end: the token expires (a rotation may have shortened its life) or is
        revoked (its sessions are revoked with it, unless that was cut short)."""
        found = self._stored()
        ends = {t.id: _ends(t) for t in found}
        return [_bounded(t, ends.get(_started_by(t) or "")) for t in found]


def _ends(token: Token) -> str | None:
    """When ``token`` stops working (ISO 8601, UTC): revoked or expired, whichever comes
    first; ``None`` while it has no end."""
    return min((t for t in (token.revoked_at, token.expires_at) if t is not None), default=None)


def _bounded(session: Token, token_ends: str | None) -> Token:
    """``session`` as it is, ending no later than ``token_ends`` (ISO 8601, UTC)."""
    if token_ends is None or (session.expires_at is not None and session.expires_at <= token_ends):
        return session
    return dataclasses.replace(session, expires_at=token_ends)
