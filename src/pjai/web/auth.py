"""Login for an app reachable from other machines: a form that takes the passphrase or
an access token, session cookies that expire, and a gate in front of every page and the
page's WebSocket.

Sessions and access tokens are tokens of the sync server's machinery, kept in the data
directory (:class:`pjai.app.websessions.WebSessions`): they survive a restart of the app, and
revoking one (``pjai web token revoke``) signs that browser out at its next request.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, quote

import nicegui
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from pjai.app import Passphrase
from pjai.app.websessions import WebSessions
from pjai.errors import ConfigError
from pjai.sync.server.tokens import PREFIX

__all__ = [
    "COOKIE",
    "LOGIN_PATH",
    "LOGOUT_PATH",
    "RECHECK_S",
    "LoginGate",
    "login_page",
    "login_submit",
    "logout",
]

COOKIE = "pjai_session"
LOGIN_PATH = "/login"
LOGOUT_PATH = "/logout"
_OPEN_PATHS = frozenset({LOGIN_PATH, "/favicon.ico"})
_OPEN_PREFIX = f"/_nicegui/{nicegui.__version__}/"
"""What a visitor may load before logging in: the form, and NiceGUI's own scripts and
styles (the same for every app). Everything else, unknown paths included (NiceGUI
answers those with the app's page), waits for a login."""

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _cookie(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            jar.load(value.decode("latin-1"))
            if COOKIE in jar:
                return jar[COOKIE].value
    return None


def _is_static(path: str) -> bool:
    return path.startswith(_OPEN_PREFIX) and "/../" not in path


RECHECK_S = 5.0
"""How often an open WebSocket's session is looked up again (at its next message: the
page's own traffic, or the socket's keep-alive every 25 s at most)."""


class LoginGate:
    """ASGI middleware: requests without a live session go to the login form; a
    WebSocket without one is closed, and so is an open one whose session was revoked
    or expired (it is looked up again every :data:`RECHECK_S` seconds)."""

    def __init__(self, app: ASGIApp, sessions: WebSessions) -> None:
        self.app = app
        self.sessions = sessions

    async def _valid(self, secret: str | None) -> bool:
        # A lookup in the sessions file: off the event loop.
        return bool(await run_in_threadpool(self.sessions.valid, secret))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        path = scope.get("path", "")
        if kind not in ("http", "websocket") or path in _OPEN_PATHS or _is_static(path):
            await self.app(scope, receive, send)
            return
        secret = _cookie(scope)
        if not await self._valid(secret):
            if kind == "websocket":
                await send({"type": "websocket.close", "code": 4401})
                return
            target = f"{LOGIN_PATH}?next={quote(path)}"
            await RedirectResponse(target, status_code=303)(scope, receive, send)
            return
        if kind == "http":
            await self.app(scope, receive, send)
            return
        checked = time.monotonic()

        async def guarded() -> MutableMapping[str, Any]:
            nonlocal checked
            message = await receive()
            if message["type"] == "websocket.receive" and time.monotonic() - checked >= RECHECK_S:
                checked = time.monotonic()
                if not await self._valid(secret):
                    await send({"type": "websocket.close", "code": 4401})
                    return {"type": "websocket.disconnect", "code": 4401}
            return message

        await self.app(scope, guarded, send)


_FORM = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>PJai · sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; background: #eef0f8; display: grid;
  place-items: center; min-height: 100vh; margin: 0; }}
form {{ background: white; padding: 2rem; border-radius: 8px; width: 20rem;
  box-shadow: 0 2px 12px #0002; display: grid; gap: 0.8rem; }}
h1 {{ margin: 0; font-size: 1.4rem; color: #3949ab; }}
input {{ padding: 0.6rem; font-size: 1rem; border: 1px solid #bbb; border-radius: 4px; }}
button {{ padding: 0.6rem; font-size: 1rem; background: #3949ab; color: white;
  border: 0; border-radius: 4px; cursor: pointer; }}
.error {{ color: #c62828; margin: 0; }}
</style></head>
<body><form method="post" action="{action}">
<h1>PJai</h1>
<label for="passphrase">Passphrase or access token</label>
<input id="passphrase" name="passphrase" type="password" autofocus required>
{error}
<button type="submit">Sign in</button>
</form></body></html>
"""


_MAX_FORM_BYTES = 4096
_CHECKS = threading.BoundedSemaphore(2)


def _checked(passphrase: Passphrase, given: str) -> bool:
    with _CHECKS:
        return passphrase.check(given)


def _safe_next(value: str | None) -> str:
    # Only a path on this app: never an address elsewhere.
    if value and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return "/"


def login_page(request: Request, *, error: str = "") -> HTMLResponse:
    """The passphrase form."""
    target = _safe_next(request.query_params.get("next"))
    action = html.escape(f"{LOGIN_PATH}?next={quote(target)}")
    shown = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    status = 401 if error else 200
    return HTMLResponse(_FORM.format(action=action, error=shown), status_code=status)


async def login_submit(request: Request, passphrase: Passphrase, sessions: WebSessions) -> Response:
    """Check the submitted passphrase or access token; on success start a session and
    go where the visitor was going."""
    raw = await request.body()
    if len(raw) > _MAX_FORM_BYTES:
        return login_page(request, error="That form is too large to be a passphrase.")
    given = parse_qs(raw.decode("utf-8", errors="replace")).get("passphrase", [""])[0]
    where = f"from {request.client.host}" if request.client else ""
    if given.startswith(PREFIX):
        secret = await run_in_threadpool(sessions.exchange, given, where)
        if secret is None:
            return login_page(
                request, error="That access token is not live: revoked, expired or unknown."
            )
    else:
        try:
            # scrypt, off the event loop and two at a time: guessing costs time and memory.
            right = await run_in_threadpool(_checked, passphrase, given)
        except ConfigError as exc:
            return login_page(request, error=str(exc))
        if not right:
            return login_page(request, error="That passphrase is not the one set for this app.")
        secret = await run_in_threadpool(sessions.start, where)
    response = RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
    response.set_cookie(
        COOKIE,
        secret,
        max_age=int(sessions.lifetime_s),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


def logout(request: Request, sessions: WebSessions) -> Response:
    """End the visitor's session and show the login form."""
    token = request.cookies.get(COOKIE)
    if token:
        sessions.end(token)
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    response.delete_cookie(COOKIE, httponly=True, samesite="strict")
    return response
