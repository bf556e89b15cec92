"""Running the web app: ``pjai serve``."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from collections.abc import Callable
from functools import partial

from nicegui import app, background_tasks, ui
from nicegui.server import Server
from starlette.requests import Request
from starlette.responses import Response

from pjai.app import MAX_UPLOAD_MB, UPLOAD_TIMEOUT_S, DataDir
from pjai.app.websessions import WebSessions
from pjai.errors import ConfigError
from pjai.sync.server.sockets import HEAD_TIMEOUT_S, http_settings
from pjai.web import auth, guard, upload_folders, uploads
from pjai.web.app import WebApp
from pjai.web.shell import root

__all__ = ["SESSION_HOURS", "is_loopback", "serve"]

SESSION_HOURS = 12.0
"""How long a login lasts, by default."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(a).is_loopback for a in _addresses(host))
        except OSError:
            return False


def _addresses(host: str) -> set[str]:
    return {str(info[4][0]) for info in socket.getaddrinfo(host, None)}


def _free_port(host: str, port: int) -> int:
    """The port the app is to listen on at ``host``: ``port``, or for 0 one the system
    has free now (NiceGUI would read 0 as its default port, 8080). :class:`ConfigError`
    if nothing can listen there now (another server has the port), before anything is
    opened."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.create_server((host, port), family=family) as probe:
            return int(probe.getsockname()[1])
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"cannot listen on {host}:{port}: the port is in use (another server?); "
                "choose another with --port"
            ) from exc
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


async def _listening(announce: Callable[[], object]) -> None:
    """Call ``announce`` once the server listens: a client that reads the address and
    connects at once is then served, and a server that cannot listen announces none.
    NiceGUI's startup handlers run before uvicorn opens its socket, and uvicorn tells
    that it has by its ``started`` flag alone (no event to wait on), so the flag is
    looked at every few milliseconds, as uvicorn's own main loop looks at its exit flag."""
    while not Server.instance.started:  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    announce()


def serve(
    data_dir: DataDir,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    session_hours: float = SESSION_HOURS,
    max_upload_mb: int = MAX_UPLOAD_MB,
    upload_timeout_s: float = UPLOAD_TIMEOUT_S,
    head_timeout_s: float = HEAD_TIMEOUT_S,
    announce: Callable[[str], object] = print,
) -> None:
    """Run the app on ``data_dir`` until interrupted; ``announce`` gets its URL once it
    listens. ``port`` 0 picks a free port, which the URL names (the port is free when
    picked: a program that takes it in the moment before the app listens makes the
    start fail, as a port in use does).

    Off loopback a login is required, so a passphrase must have been set
    (``pjai web passphrase``); without one the app refuses to start. An upload larger
    than ``max_upload_mb`` MB is refused (413) before more of it is read, as is one
    beyond the two under way (503) or one the temporary disk has no room for (507), and
    one whose body stops moving on for ``upload_timeout_s`` seconds is ended (408).
    A connection that has not sent a request's head (16 KiB at most unfinished) within
    ``head_timeout_s`` seconds of its opening, or of the end of the answer before, is
    closed (:func:`~pjai.sync.server.sockets.http_settings`).
    """
    if session_hours <= 0:
        raise ConfigError(f"--session-hours must be above 0, got {session_hours}")
    if max_upload_mb < 1:
        raise ConfigError(f"--max-upload-mb must be at least 1, got {max_upload_mb}")
    if not upload_timeout_s > 0:
        raise ConfigError(f"--upload-timeout-s must be above 0, got {upload_timeout_s}")
    if not head_timeout_s > 0:
        raise ConfigError(f"--head-timeout-s must be above 0, got {head_timeout_s}")
    passphrase = data_dir.passphrase()
    login = not is_loopback(host)
    if login and not passphrase.is_set:
        raise ConfigError(
            f"the web app would listen on {host}, reachable from other machines, and no "
            "passphrase is set: set one with `pjai web passphrase`, or serve on 127.0.0.1"
        )
    port = _free_port(host, port)  # before anything is opened or the URL announced
    # What uploads of a server killed mid-way left on the temporary disk (never what
    # another process's upload holds).
    upload_folders.sweep()
    web = WebApp(data_dir, max_upload_mb=max_upload_mb)
    app.on_shutdown(web.sync.disconnect)
    app.on_shutdown(web.close)
    # Innermost of PJai's: the gates outside it refuse a stranger's upload unread.
    app.add_middleware(uploads.UploadLimit, limit=web.max_upload_bytes, timeout=upload_timeout_s)
    app.add_middleware(guard.NoFraming)
    if not login:
        app.add_middleware(guard.LocalOnly, names=frozenset({host}))
    if login:
        sessions = WebSessions.open(data_dir.path, session_hours * 3600)
        app.on_shutdown(sessions.close)
        # Sessions begun to last longer end now as this run ends them, stored so that
        # `pjai web token list` shows it.
        sessions.hold_to_lifetime(actor=f"pjai serve --session-hours {session_hours:g}")
        app.add_middleware(auth.LoginGate, sessions=sessions)
        # Outside the gate: another site's WebSocket or form is refused before its
        # cookie is looked up.
        app.add_middleware(guard.SameOrigin)
        app.add_api_route(auth.LOGIN_PATH, auth.login_page, methods=["GET"])

        throttle = auth.LoginThrottle()

        async def submit(request: Request) -> Response:
            return await auth.login_submit(request, passphrase, sessions, throttle)

        app.add_api_route(auth.LOGIN_PATH, submit, methods=["POST"])

        def logout(request: Request) -> Response:
            return auth.logout(request, sessions)

        def logout_page(request: Request) -> Response:
            return auth.logout_page(request, sessions)

        # A POST, which SameOrigin lets through only from the app's own pages: a GET
        # would sign the visitor out from any page of the same site (an image on
        # another app of this host sends the SameSite cookie along). A GET (the
        # address typed, an old bookmark) shows a page whose button sends that POST.
        app.add_api_route(auth.LOGOUT_PATH, logout, methods=["POST"])
        app.add_api_route(auth.LOGOUT_PATH, logout_page, methods=["GET"])
        web.login_required = True
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    app.on_startup(lambda: background_tasks.create(_listening(lambda: announce(url))))
    ui.run(
        partial(root, web),
        host=host,
        port=port,
        title="PJai",
        favicon="🧠",
        reload=False,
        show=False,
        show_welcome_message=False,
        # A client is the address that connects: never one an X-Forwarded-For header
        # names, which any process on this machine could send to escape the login's
        # limit on tries (a reverse proxy's clients all count as the proxy).
        proxy_headers=False,
        # h11, heads bounded in size and time. What the app sends is not timed: a
        # browser pausing a download stops reading, and is not to lose it.
        **http_settings(send_timeout=None, head_timeout=head_timeout_s),
    )
