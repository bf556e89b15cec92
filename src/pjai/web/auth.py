"""Login for an app reachable from other machines: a form that takes the passphrase or
an access token, session cookies that expire, and a gate in front of every page and the
page's WebSocket.

Sessions and access tokens are tokens of the sync server's machinery, kept in the data
directory (:class:`pjai.app.websessions.WebSessions`): they survive a restart of the app, and
revoking one (``pjai web token revoke``) signs that browser out at its next request.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from math import ceil
from typing import Any
from urllib.parse import parse_qs, quote

import nicegui
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request, cookie_parser
from starlette.responses import HTMLResponse, RedirectResponse, Response

from pjai.app import Passphrase
from pjai.app.websessions import WebSessions
from pjai.errors import BusyError, ConfigError
from pjai.sync.server.asgi import read_body
from pjai.sync.server.places import address_key
from pjai.sync.server.tokens import PREFIX

__all__ = [
    "CHECKS_WAITING",
    "COOKIE",
    "LOGIN_PATH",
    "LOGOUT_PATH",
    "RECHECK_S",
    "LoginGate",
    "LoginThrottle",
    "login_page",
    "login_submit",
    "logout",
    "logout_page",
]

COOKIE = "pjai_session"
LOGIN_PATH = "/login"
LOGOUT_PATH = "/logout"
_OPEN_PATHS = frozenset({LOGIN_PATH, LOGOUT_PATH, "/favicon.ico"})
_OPEN_ROUTES = re.compile(
    rf"/_nicegui/{re.escape(nicegui.__version__)}/"
    r"(?:(?:static|libraries|components)/|(?:resources|esm)/[^/]+/)"
)
"""What a visitor may load before logging in: the form, the sign-out's address (whose
page says they are not signed in), and NiceGUI's own scripts and styles (the same for
every app), each from the route that serves them, as that route matches it
(``resources/{key}/{path}`` and ``esm/{key}/{path}`` need a key). Everything
else waits for a login: unknown paths too, under NiceGUI's prefix as well (``esm/``,
``resources//x``), since NiceGUI answers a path no route serves with the app's page."""

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _cookie(scope: Scope) -> str | None:
    """The session cookie, read as Starlette reads cookies for the login and logout
    routes: past cookies of other apps on this host that a strict parser would stop at."""
    sent = [
        value.decode("latin-1") for name, value in scope.get("headers", []) if name == b"cookie"
    ]
    return cookie_parser("; ".join(sent)).get(COOKIE)


def _is_static(path: str) -> bool:
    return _OPEN_ROUTES.match(path) is not None and "/../" not in path


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


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>PJai · {title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{style}</style></head>
<body>{body}</body></html>
"""
_STYLE = """
body { font-family: system-ui, sans-serif; background: #eef0f8; display: grid;
  place-items: center; min-height: 100vh; margin: 0; }
.card { background: white; padding: 2rem; border-radius: 8px; box-sizing: border-box;
  width: min(24rem, 100vw - 2rem); box-shadow: 0 2px 12px #0002; display: grid;
  gap: 0.8rem; }
h1 { margin: 0; font-size: 1.4rem; color: #3949ab; }
p { margin: 0; }
input { padding: 0.6rem; font: inherit; border: 1px solid #bbb; border-radius: 4px; }
button, .button { padding: 0.6rem; font: inherit; background: #3949ab; color: white;
  border: 0; border-radius: 4px; cursor: pointer; text-align: center;
  text-decoration: none; }
.error { color: #c62828; }
.back { text-align: center; color: #3949ab; }
"""
"""One look for the pages outside the app: the card fits a phone's width too."""

_FORM = """<form class="card" method="post" action="{action}">
<h1>PJai</h1>
<label for="passphrase">Passphrase or access token</label>
<input id="passphrase" name="passphrase" type="password" autofocus required>
{error}
<button type="submit">Sign in</button>
</form>"""

_SIGN_OUT = f"""<form class="card" method="post" action="{LOGOUT_PATH}">
<h1>PJai</h1>
<p><strong>Sign out?</strong> This ends your session in this browser.</p>
<button type="submit">Sign out</button>
<a class="back" href="/">Back to the app</a>
</form>"""

_SIGNED_OUT = f"""<main class="card">
<h1>PJai</h1>
<p>You are not signed in.</p>
<a class="button" href="{LOGIN_PATH}">Sign in</a>
</main>"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=title, style=_STYLE, body=body), status_code=status)


_MAX_FORM_BYTES = 4096
_CHECKS_AT_ONCE = 2
"""Passphrase checks (scrypt) running at one time; others wait without holding a thread
of the pool that every request's session check uses."""

CHECKS_WAITING = 64
"""Passphrase checks that may wait for their turn (about two seconds of checks): a
sign-in beyond them is asked to try again soon (503), rather than wait behind a flood
of tries from many addresses."""

_BUSY_RETRY_S = 2


class LoginThrottle:
    """How many passphrases or tokens a client may try: :data:`FAILURES` within
    :data:`WINDOW_S` seconds, then it waits until the oldest try is that old. A try
    counts as it starts (many sent at once count too); the right one forgets them.
    A client is an IPv4 address or an IPv6 /64 network."""

    FAILURES = 5
    WINDOW_S = 60.0
    CLIENTS = 10_000
    """Clients remembered at most: the oldest are forgotten first."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tries: dict[str, deque[float]] = {}
        self._checks = asyncio.Semaphore(_CHECKS_AT_ONCE)
        self._waiting = 0

    def wait(self, client: str) -> float:
        """Seconds ``client`` must wait before trying again (0: it may now)."""
        times = self._tries.get(address_key(client))
        now = self._clock()
        while times and now - times[0] >= self.WINDOW_S:
            times.popleft()
        if times is None or len(times) < self.FAILURES:
            return 0.0
        return times[0] + self.WINDOW_S - now

    def tried(self, client: str) -> None:
        """Count a try from ``client``."""
        client = address_key(client)
        times = self._tries.pop(client, None) or deque(maxlen=self.FAILURES)
        times.append(self._clock())
        self._tries[client] = times  # the latest last: the first ones are the oldest
        if len(self._tries) > self.CLIENTS:
            del self._tries[next(iter(self._tries))]

    def passed(self, client: str) -> None:
        """``client`` gave the right passphrase or a live token: forget its tries."""
        self._tries.pop(address_key(client), None)

    @property
    def checking(self) -> int:
        """Passphrase checks waiting for their turn or running."""
        return self._waiting

    async def check(self, passphrase: Passphrase, given: str) -> bool:
        """Whether ``given`` is the passphrase: scrypt, off the event loop and a few at
        a time, so that guessing costs time and memory.
        :class:`~pjai.errors.BusyError` when :data:`CHECKS_WAITING` checks wait
        already."""
        if self._waiting >= CHECKS_WAITING:
            raise BusyError(f"{self._waiting} passphrase checks are waiting")
        self._waiting += 1
        try:
            async with self._checks:  # waiting here holds no thread
                return bool(await run_in_threadpool(passphrase.check, given))
        finally:
            self._waiting -= 1


def _safe_next(value: str | None) -> str:
    # Only a path on this app: never an address elsewhere, nor the sign-out, which a
    # link could otherwise send a visitor to right after they sign in.
    if value and value.startswith("/") and not value.startswith(("//", "/\\", LOGOUT_PATH)):
        return value
    return "/"


def login_page(request: Request, *, error: str = "") -> HTMLResponse:
    """The passphrase form."""
    target = _safe_next(request.query_params.get("next"))
    action = html.escape(f"{LOGIN_PATH}?next={quote(target)}")
    shown = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return _page("sign in", _FORM.format(action=action, error=shown), 401 if error else 200)


async def login_submit(
    request: Request, passphrase: Passphrase, sessions: WebSessions, throttle: LoginThrottle
) -> Response:
    """Check the submitted passphrase or access token; on success start a session and
    go where the visitor was going. A client that sent too many wrong ones waits."""
    client = request.client.host if request.client else ""
    if (wait := throttle.wait(client)) > 0:
        page = login_page(
            request, error=f"Too many wrong attempts from here: try again in {ceil(wait)} s."
        )
        page.status_code = 429
        page.headers["Retry-After"] = str(ceil(wait))
        return page
    # Counted with the look above, before anything is awaited: tries sent at once, each
    # still sending its form, count too.
    throttle.tried(client)
    try:
        raw = await read_body(request, _MAX_FORM_BYTES)  # never more held than that
    except ValueError:
        return login_page(request, error="That form is too large to be a passphrase.")
    except TimeoutError:  # sent a byte at a time: the rest is not read, the connection ends
        page = login_page(request, error="That form took too long to arrive: try again.")
        page.status_code = 408
        page.headers["Connection"] = "close"
        return page
    given = parse_qs(raw.decode("utf-8", errors="replace")).get("passphrase", [""])[0]
    where = f"from {client}" if client else ""
    if given.startswith(PREFIX):
        secret = await run_in_threadpool(sessions.exchange, given, where)
        if secret is None:
            return login_page(
                request, error="That access token is not live: revoked, expired or unknown."
            )
    else:
        checked = await run_in_threadpool(passphrase.version)
        try:
            right = await throttle.check(passphrase, given)
        except BusyError:
            page = login_page(request, error="Too many sign-ins at once: try again in a moment.")
            page.status_code = 503
            page.headers["Retry-After"] = str(_BUSY_RETRY_S)
            return page
        except ConfigError as exc:
            # What is wrong and how to mend it is for whoever runs the app: the form
            # says only that, not where the data directory is.
            log.error("a passphrase could not be checked: %s", exc)
            return login_page(
                request,
                error="The passphrase cannot be checked now: whoever runs this app must "
                "set it again (its log says why).",
            )
        if not right:
            return login_page(request, error="That passphrase is not the one set for this app.")
        secret = await run_in_threadpool(sessions.start, where)
        if await run_in_threadpool(passphrase.version) != checked:
            # Set anew as this one was checked: `pjai web passphrase` may have signed
            # out the old one's sessions before this one began, which must go too.
            await run_in_threadpool(sessions.end, secret)
            return login_page(
                request,
                error="The passphrase changed as you signed in: sign in with the one set now.",
            )
    throttle.passed(client)
    response = RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
    response.set_cookie(
        COOKIE,
        secret,
        max_age=int(sessions.lifetime_s),
        httponly=True,
        samesite="strict",
        secure=_over_tls(request),
    )
    return response


def _over_tls(request: Request) -> bool:
    # The app has no TLS of its own: a reverse proxy in front of it that terminates TLS
    # says so. Only the sender's own cookie depends on it.
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0]
    return request.url.scheme == "https" or forwarded.strip().lower() == "https"


def logout_page(request: Request, sessions: WebSessions) -> HTMLResponse:
    """What the sign-out's address shows when typed or bookmarked (a GET): signed in,
    the app's sign-out button, whose POST ends the session; else a link to the login
    form. A GET never signs out: any page of the same site could send one."""
    signed_in = sessions.valid(request.cookies.get(COOKIE))
    response = _page("sign out", _SIGN_OUT if signed_in else _SIGNED_OUT)
    response.headers["Cache-Control"] = "no-store"  # it says whether this browser is in
    return response


def logout(request: Request, sessions: WebSessions) -> Response:
    """End the visitor's session and show the login form."""
    token = request.cookies.get(COOKIE)
    if token:
        sessions.end(token)
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    response.delete_cookie(COOKIE, httponly=True, samesite="strict")
    return response
