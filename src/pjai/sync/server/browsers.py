"""The sync server is not for web pages: the requests it refuses as coming from one
(:class:`NotForBrowsers`), and the names by which a server without tokens may be named."""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
from urllib.parse import urlsplit

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["NotForBrowsers", "own_names", "plain"]

log = logging.getLogger(__name__)


def _host(scope: Scope) -> str | None:
    """The host name a request names in its ``Host`` header, lower case, or ``None``."""
    for header, value in scope.get("headers", []):
        if header == b"host":
            try:
                found = urlsplit(f"//{bytes(value).decode('latin-1')}").hostname
            except ValueError:  # a malformed IPv6 literal
                return ""
            return None if found is None else plain(found)
    return None


def plain(name: str) -> str:
    """A host name as compared: lower case, without the root's dot (``sync.lan.``)."""
    return name.lower().removesuffix(".")


def own_names() -> frozenset[str]:
    """The names this machine calls itself, which a page cannot point elsewhere."""
    names = {socket.gethostname(), socket.getfqdn()}
    return frozenset(plain(n) for name in names for n in (name, f"{name}.local") if name)


class NotForBrowsers:
    """ASGI middleware: no web page may use the sync server (its clients are PJai
    instances, which send no ``Origin``). A request with an ``Origin``, as browsers send
    with every WebSocket and cross-site request, is refused: without tokens
    (``--no-auth``) a page the user visits could otherwise push and pull.

    Without tokens, a request must also name the server by an IP address, as
    ``localhost``, by this machine's own name or by one of ``hosts``: a page whose own
    name its DNS points at the server (DNS rebinding) sends no ``Origin`` with its
    same-origin requests, but names itself in ``Host``."""

    def __init__(self, app: ASGIApp, *, open_door: bool, hosts: frozenset[str]) -> None:
        self.app = app
        self.open_door = open_door
        self.hosts = hosts
        self._warned: set[str | None] = set()

    def _named(self, scope: Scope) -> bool:
        host = _host(scope)
        if host is None or host in self.hosts or host == "localhost":
            return True
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return host.endswith(".localhost")
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if any(name == b"origin" for name, _ in scope.get("headers", [])):
            message = "the sync server is not for web pages"
        elif self.open_door and not self._named(scope):
            host = _host(scope)
            message = (
                f"this server takes no tokens, and answers to no name {host!r}: name it by "
                "its IP address, localhost or a name given to `pjai sync-server serve "
                "--allowed-host`"
            )
            if host not in self._warned and len(self._warned) < 100:
                self._warned.add(host)
                log.warning("refused requests naming the server %r (see --allowed-host)", host)
        else:
            await self.app(scope, receive, send)
            return
        refusal = {"error": "forbidden", "message": message}
        if scope["type"] == "http":
            await JSONResponse(refusal, 403)(scope, receive, send)
        elif "websocket.http.response" in (scope.get("extensions") or {}):
            # The refusal says why, where the server can answer a handshake with a body.
            headers = [(b"content-type", b"application/json")]
            await send({"type": "websocket.http.response.start", "status": 403, "headers": headers})
            await send(
                {"type": "websocket.http.response.body", "body": json.dumps(refusal).encode()}
            )
        else:
            await send({"type": "websocket.close", "code": 4403})
