"""What every request to the web app must be, whatever else gates it.

- On loopback, where no login is asked, only this machine's pages may use the app: a
  request must name the host as a loopback address or ``localhost`` (never a name DNS
  answers, which a website can point at 127.0.0.1: DNS rebinding), and a WebSocket or a
  form sent from a page must come from such an origin.
- Off loopback, behind the login, a WebSocket or a form must come from a page of the
  host and port the request names. The session cookie is SameSite strict, but a site
  is a whole domain, every port of it: a page of another app on the same host, or of
  a sibling subdomain, would send the cookie with its WebSocket (NiceGUI's Socket.IO
  server takes any origin).
- No page may be framed by another site (clickjacking).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any
from urllib.parse import urlsplit

__all__ = ["LocalOnly", "NoFraming", "SameOrigin", "answer_text", "local_name"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def local_name(name: str | None) -> bool:
    """Whether ``name`` (a host name, without port) is this machine by itself: a
    loopback address, ``localhost`` or a name under it."""
    if not name:
        return False
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _hostname(authority: str) -> str | None:
    try:
        return urlsplit(f"//{authority}").hostname
    except ValueError:  # a malformed IPv6 literal
        return None


def _origin_host(origin: str) -> str | None:
    try:
        return urlsplit(origin).hostname
    except ValueError:
        return None


def _from_page(scope: Scope, allowed: Callable[[str], bool]) -> bool:
    """Whether a WebSocket or form comes from a page whose origin is ``allowed``;
    other requests may come from anywhere."""
    origin = _header(scope, b"origin")
    if origin is None:
        # Browsers send an origin with every WebSocket and cross-site form.
        return bool(scope["type"] == "http")
    if scope["type"] == "http" and scope.get("method") in _SAFE_METHODS:
        return True
    return allowed(origin)


def _same_authority(origin: str, host: str | None) -> bool:
    """Whether ``origin`` is a page of the host and port named by ``host`` (a
    ``Host`` header); a port left out is the default of the origin's scheme."""
    try:
        page, asked = urlsplit(origin), urlsplit(f"//{host}")
        page_port, asked_port = page.port, asked.port
    except ValueError:  # a malformed IPv6 literal or port
        return False
    default = _DEFAULT_PORTS.get(page.scheme)
    if host is None or default is None or page.hostname is None:
        return False  # no Host, or an opaque origin ("null": a sandboxed frame, a file)
    return page.hostname == asked.hostname and (page_port or default) == (asked_port or default)


async def _refuse(scope: Scope, send: Send, why: bytes) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 4403})
        return
    await answer_text(send, 403, why)


async def answer_text(
    send: Send,
    status: int,
    text: bytes,
    *,
    close: bool = False,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """Answer an HTTP request with ``status``, the plain ``text`` and ``headers`` besides;
    with ``close``, the connection ends after it (the request's body was not read)."""
    fields = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(text)).encode()),
        *headers,
    ]
    if close:
        fields.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": fields})
    await send({"type": "http.response.body", "body": text})


class LocalOnly:
    """ASGI middleware for the app on loopback: requests whose ``Host`` is not this
    machine by itself get 403; so do WebSockets and forms from a page of another origin."""

    def __init__(self, app: ASGIApp, names: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.names = frozenset(name.lower() for name in names)
        """More names of this machine: the one the app was served on (a host name
        that resolves to loopback, such as Debian's own in /etc/hosts)."""

    def _local(self, name: str | None) -> bool:
        return local_name(name) or (name is not None and name.lower() in self.names)

    def _allowed(self, scope: Scope) -> bool:
        if not self._local(_hostname(_header(scope, b"host") or "")):
            return False
        return _from_page(scope, lambda origin: self._local(_origin_host(origin)))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        await _refuse(
            scope, send, b"This app answers only pages of this machine (127.0.0.1 or localhost).\n"
        )


class SameOrigin:
    """ASGI middleware for the app off loopback: a WebSocket or form from a page of
    another origin than the host and port the request names gets 403 (a WebSocket
    is closed), as does a WebSocket that names no origin."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def _allowed(self, scope: Scope) -> bool:
        host = _header(scope, b"host")
        return _from_page(scope, lambda origin: _same_authority(origin, host))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        await _refuse(scope, send, b"This app answers only its own pages, not another site's.\n")


class NoFraming:
    """ASGI middleware: every HTTP response forbids framing by another site."""

    HEADERS = (
        (b"x-frame-options", b"DENY"),
        (b"content-security-policy", b"frame-ancestors 'none'"),
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def framed(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.HEADERS]
            await send(message)

        await self.app(scope, receive, framed)
