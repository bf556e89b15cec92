"""Login off loopback: the passphrase file, sessions that expire, the gate."""

from __future__ import annotations

import asyncio
import json
import math
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import nicegui
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from typer.testing import CliRunner
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from pjai.app import DataDir, Passphrase
from pjai.app.websessions import WEB_SESSIONS_FILE, WebSessions
from pjai.bench.webapp import WebProcess
from pjai.cli import app
from pjai.errors import ConfigError
from pjai.schema.types import from_iso, to_iso, utc_now
from pjai.sync.server import asgi
from pjai.sync.server.tables import tokens
from pjai.web import auth, guard
from pjai.web.auth import COOKIE, LoginGate
from pjai.web.server import is_loopback
from tests.bodies import MIB, OfferedBody

runner = CliRunner()


def test_a_passphrase_is_kept_as_a_hash_and_checked(tmp_path: Path) -> None:
    found = Passphrase.of(tmp_path)
    assert not found.is_set
    assert not found.check("anything at all")
    found.set("correct horse battery")
    assert "correct horse" not in found.path.read_text()
    assert found.check("correct horse battery")
    assert not found.check("correct horse battery ")
    assert found.clear()
    assert not found.is_set


def test_a_short_passphrase_is_refused_and_the_old_one_kept(tmp_path: Path) -> None:
    found = Passphrase.of(tmp_path)
    found.set("a long enough passphrase")
    with pytest.raises(ConfigError, match="at least 12 characters, got 5"):
        found.set("short")
    assert found.check("a long enough passphrase")


def test_a_passphrase_the_login_form_would_take_for_a_token_is_refused(
    tmp_path: Path,
) -> None:
    found = Passphrase.of(tmp_path)
    found.set("a long enough passphrase")
    with pytest.raises(ConfigError, match="cannot begin with 'pjai_'"):
        found.set("pjai_ the name of this app and more")
    assert found.check("a long enough passphrase")


@pytest.mark.parametrize(
    "record",
    [
        {"salt": "zz"},
        {"scrypt": {}, "salt": "00", "hash": "00"},  # no cost
        {"scrypt": {"n": 3, "r": 8, "p": 1}, "salt": "00", "hash": "00"},  # n not a power of 2
        {"scrypt": {"n": "x", "r": 8, "p": 1}, "salt": "00", "hash": "00"},
        None,  # a folder where the file goes
    ],
)
def test_a_damaged_passphrase_file_says_how_to_mend_it(tmp_path: Path, record: object) -> None:
    found = Passphrase.of(tmp_path)
    if record is None:
        found.path.mkdir()
    else:
        found.path.write_text(json.dumps(record))
    with pytest.raises(ConfigError, match="set the passphrase again"):
        found.check("whatever it is")


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[WebSessions]:
    with WebSessions.open(tmp_path, lifetime_s=60) as found:
        yield found


def test_sessions_are_tokens_that_survive_a_restart_and_end_on_logout(tmp_path: Path) -> None:
    with WebSessions.open(tmp_path, lifetime_s=60) as sessions:
        secret = sessions.start("from 10.0.0.7")
        assert sessions.valid(secret)
        assert not sessions.valid("made-up")
        assert not sessions.valid(None)
    assert secret not in (tmp_path / WEB_SESSIONS_FILE).read_bytes().decode("latin-1")
    with WebSessions.open(tmp_path, lifetime_s=60) as sessions:  # the app restarted
        assert sessions.valid(secret)
        sessions.end(secret)
        assert not sessions.valid(secret)
        (made,) = sessions.list()
        assert made.label == "session from 10.0.0.7"
        assert made.revoked_at is not None
        assert [(e.action, e.actor) for e in sessions.history()] == [
            ("token.create", "web login"),
            ("token.revoke", "web logout"),
        ]


def test_a_session_expires(tmp_path: Path) -> None:
    with WebSessions.open(tmp_path, lifetime_s=0.5) as sessions:
        secret = sessions.start()
        assert sessions.valid(secret)
        time.sleep(0.6)
        assert not sessions.valid(secret)


def test_a_shorter_session_lifetime_ends_the_sessions_already_longer(tmp_path: Path) -> None:
    with WebSessions.open(tmp_path, lifetime_s=12 * 3600) as sessions:
        secret = sessions.start("from 10.0.0.7")
        access, phone = sessions.create_access("phone")
        by_token = sessions.exchange(access, "from phone")
        # Both began 90 minutes ago.
        began = to_iso(utc_now() - timedelta(minutes=90))
        with sessions.engine.begin() as conn:
            conn.execute(sa.update(tokens).values(created_at=began))
    # The app restarted with --session-hours 1: a login lasts an hour now.
    with WebSessions.open(tmp_path, lifetime_s=3600) as sessions:
        assert not sessions.valid(secret)  # before their ends are stored too
        assert not sessions.valid(by_token)
        assert sessions.hold_to_lifetime(actor="pjai serve --session-hours 1") == 2
        assert sessions.hold_to_lifetime() == 0  # once
        now = to_iso(utc_now())
        states = {t.label: t.live(now) for t in sessions.list()}
        assert states == {"session from 10.0.0.7": False, "phone": True,
                          f"session from phone (token {phone.id})": False}  # fmt: skip
        shortened = [e for e in sessions.history() if e.action == "token.shorten"]
        assert [e.actor for e in shortened] == ["pjai serve --session-hours 1"] * 2
    with WebSessions.open(tmp_path, lifetime_s=2 * 3600) as sessions:
        assert not sessions.valid(secret)  # ended: more hours do not bring it back
        assert sessions.hold_to_lifetime() == 0


def test_a_session_begun_within_a_shorter_lifetime_is_shortened_to_it(tmp_path: Path) -> None:
    with WebSessions.open(tmp_path, lifetime_s=12 * 3600) as sessions:
        secret = sessions.start()
        (made,) = sessions.list()
    with WebSessions.open(tmp_path, lifetime_s=3600) as sessions:
        assert sessions.hold_to_lifetime() == 1
        assert sessions.valid(secret)  # an hour after it began
        (held,) = sessions.list()
        assert held.expires_at == to_iso(from_iso(made.created_at) + timedelta(hours=1))


@pytest.mark.parametrize("hours", [1e8, 1e20, math.inf])
def test_a_session_lifetime_past_the_last_day_kept_is_refused_saying_so(
    tmp_path: Path, hours: float
) -> None:
    with WebSessions.open(tmp_path, lifetime_s=12 * 3600) as sessions:
        sessions.start()
    said = re.escape(f"a session cannot last {hours:g} hours")
    with (
        pytest.raises(ConfigError, match=said) as caught,
        WebSessions.open(tmp_path, lifetime_s=hours * 3600) as sessions,
    ):
        sessions.hold_to_lifetime()  # as `pjai serve` starts
    assert "9999-12-30" in str(caught.value)


def test_revoking_a_session_signs_it_out(sessions: WebSessions) -> None:
    secret = sessions.start()
    (made,) = sessions.list()
    sessions.revoke(made.id, actor="ada")
    assert not sessions.valid(secret)


def test_an_access_token_starts_a_session_no_longer_than_itself(sessions: WebSessions) -> None:
    access, token = sessions.create_access("phone", expires_in=timedelta(seconds=30))
    assert not sessions.valid(access)  # a token to log in with, not a session
    secret = sessions.exchange(access, "from phone")
    assert secret is not None
    assert sessions.valid(secret)
    started = next(t for t in sessions.list() if t.label.startswith("session from phone"))
    assert started.label == f"session from phone (token {token.id})"
    assert started.expires_at is not None
    assert token.expires_at is not None
    assert started.expires_at <= token.expires_at  # 30 s, not the session's 60
    assert sessions.exchange(secret) is None  # a session does not make sessions
    other = sessions.start("from the desk")
    sessions.revoke(token.id)
    assert sessions.exchange(access) is None
    assert not sessions.valid(secret)  # the sessions it started end with it
    assert sessions.valid(other)


@pytest.mark.anyio
@pytest.mark.parametrize("expires_in", [None, timedelta(hours=3)])
async def test_a_rotated_token_s_sessions_end_when_its_overlap_does(
    tmp_path: Path, expires_in: timedelta | None
) -> None:
    with WebSessions.open(tmp_path, lifetime_s=2 * 3600) as sessions:
        access, token = sessions.create_access("phone", expires_in=expires_in)
        secret = sessions.exchange(access, "from phone")
        assert secret is not None
        # An overlap shorter than the session: the token's end comes first, and the
        # list says so.
        _, _, old = sessions.rotate(token.id, overlap=timedelta(hours=1))
        (session,) = [t for t in sessions.list() if t.label.startswith("session")]
        assert old.expires_at is not None
        assert session.expires_at == old.expires_at
        assert sessions.valid(secret)  # for the overlap
        async with gated(sessions) as client:
            client.cookies.set(COOKIE, secret)
            assert (await client.get("/personas")).text == "the page"
            # No overlap: the old token ends now, and the sessions it started with it.
            sessions.rotate(token.id, overlap=timedelta(0))
            assert not sessions.valid(secret)
            assert (await client.get("/personas")).status_code == 303


def test_a_rotation_that_leaves_the_token_s_end_as_it_was_leaves_its_sessions(
    sessions: WebSessions,
) -> None:
    access, token = sessions.create_access("phone", expires_in=timedelta(seconds=30))
    secret = sessions.exchange(access)
    assert secret is not None
    _, _, old = sessions.rotate(token.id, overlap=timedelta(hours=1))
    assert old.expires_at == token.expires_at  # the overlap outlasts it: not lengthened
    assert sessions.valid(secret)


def test_a_token_s_sessions_end_with_it_however_it_ends(sessions: WebSessions) -> None:
    # Revoked by the token machinery alone (a revocation cut short, or a login that
    # exchanged the token as it was being revoked): its sessions end all the same.
    access, token = sessions.create_access("phone")
    secret = sessions.exchange(access)
    assert secret is not None
    sessions.tokens.revoke(token.id)
    assert not sessions.valid(secret)
    by_passphrase = sessions.start("from the desk")
    assert sessions.valid(by_passphrase)


def test_access_tokens_need_a_label_and_rotate(sessions: WebSessions) -> None:
    with pytest.raises(ConfigError, match="needs a name"):
        sessions.create_access(" ")
    with pytest.raises(ConfigError, match="needs a name"):
        sessions.create_access("session of mine")
    old_secret, old = sessions.create_access("laptop")
    new_secret, _, replaced = sessions.rotate(old.id, overlap=timedelta(0))
    assert sessions.exchange(new_secret) is not None
    assert sessions.exchange(old_secret) is None
    assert replaced.id == old.id


def test_a_session_is_not_rotated_as_if_it_were_an_access_token(sessions: WebSessions) -> None:
    secret = sessions.start("from the desk")
    (session,) = sessions.list()
    with pytest.raises(ConfigError, match="is a session, not an access token"):
        sessions.rotate(session.id[:-4], overlap=timedelta(0))
    assert sessions.valid(secret)  # as it was
    assert sessions.list() == [session]


def test_sync_tokens_do_not_open_the_web_app(tmp_path: Path, sessions: WebSessions) -> None:
    secret, _ = sessions.tokens.create("default", "admin", "a sync token")
    assert sessions.check(secret) is None
    assert sessions.exchange(secret) is None


def test_the_token_commands_make_list_rotate_and_revoke(tmp_path: Path) -> None:
    where = ["--data-dir", str(tmp_path)]
    made = runner.invoke(app, ["web", "token", "create", "--name", "tablet", "--json", *where])
    assert made.exit_code == 0, made.output
    created = json.loads(made.stdout)
    listed = runner.invoke(app, ["web", "token", "list", "--json", *where])
    assert [t["label"] for t in json.loads(listed.stdout)] == ["tablet"]
    assert created["secret"] not in listed.stdout
    table = runner.invoke(app, ["web", "token", "list", *where], env={"COLUMNS": "200"})
    header = table.stdout.splitlines()[0].split()
    assert header == ["id", "name", "created", "(UTC)", "revoked", "expires", "state"]  # no store
    turned = runner.invoke(app, ["web", "token", "rotate", created["id"], "--json", *where])
    assert json.loads(turned.stdout)["replaces"] == created["id"]
    gone = runner.invoke(app, ["web", "token", "revoke", created["id"], *where])
    assert gone.exit_code == 0, gone.output
    assert f"Revoked tablet {created['id']}" in gone.stdout
    again = runner.invoke(app, ["web", "token", "revoke", created["id"], *where])
    assert again.exit_code == 1
    assert "no live token" in again.output


def test_the_token_list_says_which_sessions_and_tokens_still_work(tmp_path: Path) -> None:
    with WebSessions.open(tmp_path, lifetime_s=3600) as sessions:
        _, tablet = sessions.create_access("tablet", expires_in=timedelta(hours=1))
        access, phone = sessions.create_access("phone")
        assert sessions.exchange(access, "from phone") is not None
        on_laptop, laptop = sessions.create_access("laptop")
        assert sessions.exchange(on_laptop, "from laptop") is not None
        sessions.revoke(laptop.id)  # and the session it started, as itself
        # Revoked by the token machinery alone (a revocation cut short): the session it
        # started no longer works, from then on.
        revoked = sessions.tokens.revoke(phone.id)
        desk = sessions.start("from the desk")
        with sessions.engine.begin() as conn:  # the tablet's hour is over
            ended = to_iso(utc_now() - timedelta(minutes=1))
            conn.execute(sa.update(tokens).where(tokens.c.id == tablet.id).values(expires_at=ended))
        assert sessions.valid(desk)
    where = ["--data-dir", str(tmp_path)]
    listed = runner.invoke(app, ["web", "token", "list", "--json", *where])
    assert listed.exit_code == 0, listed.output
    found = {t["label"]: t for t in json.loads(listed.stdout)}
    assert {label: t["state"] for label, t in found.items()} == {
        "tablet": "expired",
        "phone": "revoked",
        f"session from phone (token {phone.id})": "expired",
        "laptop": "revoked",
        f"session from laptop (token {laptop.id})": "revoked",
        "session from the desk": "live",
    }
    assert found[f"session from phone (token {phone.id})"]["expires_at"] == revoked.revoked_at
    table = runner.invoke(app, ["web", "token", "list", *where], env={"COLUMNS": "200"})
    states = {row.split("\t")[1]: row.split("\t")[-1] for row in table.stdout.splitlines()[1:]}
    assert states["tablet"] == "expired"
    assert states["session from the desk"] == "live"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("localhost", True), ("::1", True), ("0.0.0.0", False)],
)
def test_which_hosts_are_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_serving_off_loopback_without_a_passphrase_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "no passphrase is set" in result.output
    assert "pjai web passphrase" in result.output


def test_serving_on_a_port_in_use_is_refused_before_announcing_it(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = runner.invoke(
            app, ["serve", "--port", str(port), "--data-dir", str(tmp_path / "data")]
        )
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}: the port is in use" in result.output
    assert "http://" not in result.output
    assert not (tmp_path / "data").exists()


def test_the_passphrase_command_reads_standard_input(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["web", "passphrase", "--data-dir", str(tmp_path)], input="twelve chars or more\n"
    )
    assert result.exit_code == 0, result.output
    assert DataDir(tmp_path).passphrase().check("twelve chars or more")
    result = runner.invoke(app, ["web", "passphrase", "--clear", "--data-dir", str(tmp_path)])
    assert "Passphrase removed." in result.output
    assert not DataDir(tmp_path).passphrase().is_set


def test_a_new_passphrase_signs_out_the_old_one_s_sessions(tmp_path: Path) -> None:
    with WebSessions.open(tmp_path) as sessions:
        by_passphrase = sessions.start("from 10.0.0.7")
        access, _ = sessions.create_access("ada")
        by_token = sessions.exchange(access)
    command = ["web", "passphrase", "--data-dir", str(tmp_path)]
    result = runner.invoke(app, command, input="a new passphrase here\n")
    assert result.exit_code == 0, result.output
    assert "Signed out 1 session(s) the old passphrase started." in result.output
    with WebSessions.open(tmp_path) as sessions:
        assert not sessions.valid(by_passphrase)
        assert sessions.valid(by_token)  # revoking its token ends it


def gated(sessions: WebSessions) -> httpx.AsyncClient:
    """A client of an app behind the gate; the app answers "the page"."""
    transport = httpx.ASGITransport(LoginGate(_page, sessions))
    return httpx.AsyncClient(transport=transport, base_url="http://app")


@pytest.mark.anyio
@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/personas",
        "/loginx",
        "/login/x",
        "/favicon-x",
        "/_nicegui/x",
        "/_nicegui/client/c/upload/1",
        f"/_nicegui/{nicegui.__version__}/../personas",
        # NiceGUI answers a path no route serves with the app's page, personas and all.
        f"/_nicegui/{nicegui.__version__}/x",
        f"/_nicegui/{nicegui.__version__}/static",
        f"/_nicegui/{nicegui.__version__}/dynamic_resources/x",
        # Under a route's prefix but not matching it (no key): the app's page too.
        f"/_nicegui/{nicegui.__version__}/resources/",
        f"/_nicegui/{nicegui.__version__}/resources//personas",
        f"/_nicegui/{nicegui.__version__}/esm/",
        f"/_nicegui/{nicegui.__version__}/esm//personas",
    ],
)
async def test_the_gate_sends_every_page_to_the_login(path: str, sessions: WebSessions) -> None:
    async with gated(sessions) as client:
        answer = await client.get(path)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=")


@pytest.mark.anyio
@pytest.mark.parametrize(
    "path",
    [
        "/login",
        "/logout",  # its page says whether the visitor is signed in
        "/favicon.ico",
        *(
            f"/_nicegui/{nicegui.__version__}/{part}/x.js"
            for part in ("static", "libraries", "components", "resources/key", "esm/key")
        ),
    ],
)
async def test_the_gate_lets_the_form_and_nicegui_s_scripts_through(
    path: str, sessions: WebSessions
) -> None:
    async with gated(sessions) as client:
        assert (await client.get(path)).text == "the page"


@pytest.mark.anyio
async def test_the_gate_lets_a_session_through(sessions: WebSessions) -> None:
    async with gated(sessions) as client:
        client.cookies.set(COOKIE, sessions.start())
        assert (await client.get("/personas")).text == "the page"


@pytest.mark.anyio
async def test_the_gate_closes_a_socket_without_a_session(sessions: WebSessions) -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(dict(message))

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    scope = {"type": "websocket", "path": "/_nicegui_ws/socket.io/", "headers": []}
    await LoginGate(_page, sessions)(scope, receive, send)
    assert sent == [{"type": "websocket.close", "code": 4401}]


async def _page(scope: Any, receive: Any, send: Any) -> None:
    await PlainTextResponse("the page")(scope, receive, send)


@pytest.mark.anyio
async def test_the_gate_finds_the_session_behind_another_app_s_odd_cookies(
    sessions: WebSessions,
) -> None:
    # Cookies ignore ports: another app on this host may leave one a strict parser
    # stops at (a space, JSON).
    async with gated(sessions) as client:
        secret = sessions.start()
        for odd in ("prefs=dark mode", 'ui={"a": 1}'):
            headers = {"cookie": f"{odd}; {COOKIE}={secret}"}
            assert (await client.get("/personas", headers=headers)).text == "the page"


def _local(app: Any = None) -> httpx.AsyncClient:
    served_on = frozenset({"vm"})  # a name of this machine's in /etc/hosts
    transport = httpx.ASGITransport(guard.NoFraming(guard.LocalOnly(app or _page, served_on)))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8080")


@pytest.mark.anyio
@pytest.mark.parametrize(
    "host", ["127.0.0.1:8080", "localhost:8080", "[::1]:8080", "127.0.0.2", "VM:8080"]
)
async def test_on_loopback_this_machine_s_names_are_served(host: str) -> None:
    async with _local() as client:
        answer = await client.get("/personas", headers={"host": host})
        assert answer.text == "the page"
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["content-security-policy"] == "frame-ancestors 'none'"
        posted = await client.post("/x", headers={"host": host, "origin": f"http://{host}"})
        assert posted.text == "the page"


@pytest.mark.anyio
async def test_on_loopback_another_name_or_origin_is_refused() -> None:
    # A site whose name DNS points at 127.0.0.1 (DNS rebinding) is another origin.
    async with _local() as client:
        rebound = await client.get("/personas", headers={"host": "attacker.example:8080"})
        assert rebound.status_code == 403
        assert "only pages of this machine" in rebound.text
        posted = await client.post("/x", headers={"origin": "http://attacker.example"})
        assert posted.status_code == 403
        # A link from another site (a GET) is followed: it sends no cookie-borne power.
        assert (await client.get("/", headers={"origin": "http://x.example"})).text == "the page"


async def _socket_closed(middleware: Any, host: str, origin: str | None) -> bool:
    """Whether ``middleware`` closes a WebSocket to ``host`` from a page of ``origin``
    (and then never passes it on to the app)."""
    sent: list[dict[str, Any]] = []
    opened: list[bool] = []

    async def socket(scope: Any, receive: Any, send: Any) -> None:
        opened.append(True)

    async def send(message: Any) -> None:
        sent.append(dict(message))

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    headers = [(b"host", host.encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    scope = {"type": "websocket", "path": "/_nicegui_ws/socket.io/", "headers": headers}
    await middleware(socket)(scope, receive, send)
    closed = sent == [{"type": "websocket.close", "code": 4403}]
    assert closed is not bool(opened)
    return closed


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("origin", "closed"),
    [("http://attacker.example", True), (None, True), ("http://localhost:8080", False)],
)
async def test_on_loopback_a_socket_opens_only_from_this_machine_s_pages(
    origin: str | None, closed: bool
) -> None:
    assert await _socket_closed(guard.LocalOnly, "127.0.0.1:8080", origin) is closed


@pytest.mark.anyio
async def test_an_open_socket_closes_once_its_session_is_revoked(
    sessions: WebSessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "RECHECK_S", 0.0)
    secret = sessions.start()
    (session,) = sessions.list()
    incoming = [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": "one"},
        {"type": "websocket.receive", "text": "two"},
    ]
    sent: list[dict[str, Any]] = []
    seen: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: Any) -> None:
        sent.append(dict(message))

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(await receive())
        seen.append(await receive())
        sessions.revoke(session.id)  # from another terminal, say
        seen.append(await receive())

    cookie = (b"cookie", f"{COOKIE}={secret}".encode())
    scope = {"type": "websocket", "path": "/_nicegui_ws/socket.io/", "headers": [cookie]}
    await LoginGate(app, sessions)(scope, receive, send)
    assert [m["type"] for m in seen] == [
        "websocket.connect",
        "websocket.receive",
        "websocket.disconnect",
    ]
    assert sent == [{"type": "websocket.close", "code": 4401}]


# -- the login form: what a visitor may send ------------------------------------------

PASSPHRASE = "correct horse battery"


@pytest.fixture
def login(tmp_path: Path, sessions: WebSessions) -> httpx.AsyncClient:
    """A client of the login route alone, the passphrase set, one throttle."""
    passphrase = Passphrase.of(tmp_path)
    passphrase.set(PASSPHRASE)
    throttle = auth.LoginThrottle()

    async def submit(request: Request) -> Response:
        return await auth.login_submit(request, passphrase, sessions, throttle)

    app = Starlette(routes=[Route(auth.LOGIN_PATH, submit, methods=["POST"])])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://app")


@pytest.mark.anyio
async def test_a_large_login_form_is_read_no_further_than_its_limit(
    login: httpx.AsyncClient,
) -> None:
    body = OfferedBody()
    async with login:
        answer = await login.post(auth.LOGIN_PATH, content=body.stream())
    assert answer.status_code == 401
    assert "That form is too large to be a passphrase." in answer.text
    assert body.read <= MIB  # the first chunk, then nothing more


@pytest.mark.anyio
async def test_a_login_form_sent_a_byte_at_a_time_is_refused_and_its_connection_ended(
    login: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(asgi, "BODY_STALL_S", 0.2)

    async def trickled() -> AsyncIterator[bytes]:
        for byte in b"passphrase=correct":
            yield bytes([byte])
            await asyncio.sleep(0.05)  # 16 KiB would take 14 minutes
        await asyncio.sleep(3600)

    async with login, asyncio.timeout(30):  # a body read to its end would take an hour
        answer = await login.post(auth.LOGIN_PATH, content=trickled())
    assert answer.status_code == 408
    assert answer.headers["connection"] == "close"
    assert "That form took too long to arrive" in answer.text


@pytest.mark.anyio
async def test_a_damaged_passphrase_file_is_told_to_its_owner_not_to_visitors(
    login: httpx.AsyncClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    damaged = Passphrase.of(tmp_path).path
    damaged.write_text(json.dumps({"salt": "zz"}))
    async with login:
        answer = await login.post(auth.LOGIN_PATH, data={"passphrase": PASSPHRASE})
    assert answer.status_code == 401
    assert "cannot be checked now" in answer.text
    assert str(tmp_path) not in answer.text  # where the data directory is stays private
    assert f"{damaged} is damaged" in caplog.text  # the log says what and how to mend it


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("asked", "goes_to"),
    [("/memories", "/memories"), ("/logout", "/"), ("//elsewhere.example/", "/")],
)
async def test_a_login_goes_where_the_visitor_was_going_but_not_to_the_sign_out(
    login: httpx.AsyncClient, asked: str, goes_to: str
) -> None:
    async with login:
        answer = await login.post(
            auth.LOGIN_PATH, params={"next": asked}, data={"passphrase": PASSPHRASE}
        )
    assert answer.status_code == 303
    assert answer.headers["location"] == goes_to


@pytest.mark.anyio
async def test_a_client_that_tries_too_often_waits_and_the_right_passphrase_forgets(
    login: httpx.AsyncClient,
) -> None:
    async with login:
        for _ in range(auth.LoginThrottle.FAILURES - 1):
            wrong = await login.post(auth.LOGIN_PATH, data={"passphrase": "guess"})
            assert wrong.status_code == 401
        right = await login.post(auth.LOGIN_PATH, data={"passphrase": PASSPHRASE})
        assert right.status_code == 303  # and the tries so far are forgotten
        for _ in range(auth.LoginThrottle.FAILURES):
            wrong = await login.post(auth.LOGIN_PATH, data={"passphrase": "guess"})
            assert wrong.status_code == 401
        held = await login.post(auth.LOGIN_PATH, data={"passphrase": PASSPHRASE})
        assert held.status_code == 429
        assert 0 < int(held.headers["retry-after"]) <= 60
        assert "Too many wrong attempts from here" in held.text


def test_a_throttle_lets_a_client_try_again_once_its_oldest_try_is_old() -> None:
    now = [0.0]
    throttle = auth.LoginThrottle(clock=lambda: now[0])
    for second in range(5):
        now[0] = float(second)
        throttle.tried("10.0.0.7")
    assert throttle.wait("10.0.0.7") == pytest.approx(56.0)
    assert throttle.wait("10.0.0.8") == 0.0  # another client is not held
    now[0] = 60.0
    assert throttle.wait("10.0.0.7") == 0.0


def test_a_throttle_counts_an_ipv6_host_s_whole_network_as_one_client() -> None:
    throttle = auth.LoginThrottle(clock=lambda: 0.0)
    for n in range(auth.LoginThrottle.FAILURES):
        throttle.tried(f"2001:db8:0:7::{n + 1:x}")  # a new address of its /64 each time
    assert throttle.wait("2001:db8:0:7:ffff::1") > 0
    assert throttle.wait("2001:db8:0:8::1") == 0.0  # the next network is another client
    for _ in range(auth.LoginThrottle.FAILURES):
        throttle.tried("::ffff:10.0.0.7")  # an IPv4 client on a dual-stack socket
    assert throttle.wait("10.0.0.7") > 0
    assert throttle.wait("::ffff:10.0.0.8") == 0.0
    throttle.passed("2001:db8:0:7::99")
    assert throttle.wait("2001:db8:0:7::1") == 0.0


@pytest.mark.anyio
async def test_tries_sent_at_once_count_before_their_forms_arrive(
    login: httpx.AsyncClient,
) -> None:
    sent = 3 * auth.LoginThrottle.FAILURES
    sending: list[str] = []
    go, all_in = asyncio.Event(), asyncio.Event()

    def one_more(*_: object) -> None:
        """Another try is sending its form, or was answered without reading it."""
        if len(sending) + sum(t.done() for t in tries) == sent:
            all_in.set()

    async def form(passphrase: str) -> AsyncIterator[bytes]:
        sending.append(passphrase)
        one_more()
        await go.wait()  # its headers are in, its form is not
        yield f"passphrase={passphrase}".encode()

    async def attempt(passphrase: str) -> int:
        headers = {"content-type": "application/x-www-form-urlencoded"}
        answer = await login.post(auth.LOGIN_PATH, content=form(passphrase), headers=headers)
        return answer.status_code

    tries: list[asyncio.Task[int]] = []
    async with login:
        tries += [asyncio.create_task(attempt("guess")) for _ in range(sent - 1)]
        tries.append(asyncio.create_task(attempt(PASSPHRASE)))
        for task in tries:
            task.add_done_callback(one_more)
        await all_in.wait()
        go.set()
        answers = await asyncio.gather(*tries)
    assert answers.count(429) == sent - auth.LoginThrottle.FAILURES
    assert 303 not in answers  # the right one came after the limit


@pytest.mark.anyio
async def test_a_login_checked_against_a_passphrase_changed_meanwhile_is_signed_out(
    tmp_path: Path, sessions: WebSessions
) -> None:
    passphrase = Passphrase.of(tmp_path)
    passphrase.set(PASSPHRASE)

    class ChangedMeanwhile(auth.LoginThrottle):
        async def check(self, passphrase: Passphrase, given: str) -> bool:
            right = await super().check(passphrase, given)
            # `pjai web passphrase` from another terminal, as this one was checked.
            passphrase.set("a new passphrase here")
            assert sessions.end_passphrase_sessions(actor="pjai web passphrase") == 0
            return right

    throttle = ChangedMeanwhile()

    async def submit(request: Request) -> Response:
        return await auth.login_submit(request, passphrase, sessions, throttle)

    app = Starlette(routes=[Route(auth.LOGIN_PATH, submit, methods=["POST"])])
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        answer = await client.post(auth.LOGIN_PATH, data={"passphrase": PASSPHRASE})
    assert answer.status_code == 401
    assert "The passphrase changed as you signed in" in answer.text
    assert COOKIE not in answer.cookies
    assert not any(t.live() for t in sessions.list())  # whoever knew the old one is out


# -- off loopback: only the app's own pages open its WebSocket and send its forms -----


def _served_off_loopback(app: Any = None) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(guard.SameOrigin(app or _page))
    return httpx.AsyncClient(transport=transport, base_url="http://pjai.example:8080")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("host", "origin"),
    [
        ("pjai.example:8080", "http://pjai.example:8080"),
        ("PJAI.example:8080", "http://pjai.example:8080"),
        ("pjai.example", "https://pjai.example"),  # through a proxy that terminates TLS
        ("pjai.example:443", "https://pjai.example"),
        ("[2001:db8::7]:8080", "http://[2001:db8::7]:8080"),
    ],
)
async def test_off_loopback_the_app_s_own_pages_send_forms(host: str, origin: str) -> None:
    async with _served_off_loopback() as client:
        posted = await client.post("/login", headers={"host": host, "origin": origin})
        assert posted.text == "the page"
        assert (await client.post("/login", headers={"host": host})).text == "the page"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "origin",
    [
        "http://pjai.example:9000",  # another app on the same host: the same site
        "http://sibling.pjai.example:8080",  # a sibling subdomain: the same site too
        "http://pjai.example",
        "http://attacker.example:8080",
        "null",  # a sandboxed frame, a file
        "http://[2001:db8::7",
    ],
)
async def test_off_loopback_another_site_s_forms_are_refused(origin: str) -> None:
    async with _served_off_loopback() as client:
        headers = {"host": "pjai.example:8080", "origin": origin}
        posted = await client.post("/login", headers=headers)
        assert posted.status_code == 403
        assert "only its own pages" in posted.text
        # A link from another site (a GET) is followed, as on loopback.
        assert (await client.get("/", headers=headers)).text == "the page"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("origin", "closed"),
    [
        ("http://pjai.example:9000", True),
        ("http://sibling.pjai.example:8080", True),
        (None, True),
        ("http://pjai.example:8080", False),
    ],
)
async def test_off_loopback_a_socket_opens_only_from_the_app_s_own_pages(
    origin: str | None, closed: bool
) -> None:
    assert await _socket_closed(guard.SameOrigin, "pjai.example:8080", origin) is closed


@contextmanager
def signed_in_off_loopback(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """`pjai serve --host 0.0.0.0` with a passphrase, until the block ends: its URL and
    the session cookie of a passphrase login."""
    data = DataDir(tmp_path / "data")
    data.passphrase().set(PASSPHRASE)
    with WebProcess(data.path, "--host", "0.0.0.0") as web:
        url = web.url.replace("0.0.0.0", "127.0.0.1")
        signed_in = httpx.post(
            url + "/login", data={"passphrase": PASSPHRASE}, headers={"origin": url}
        )
        assert signed_in.status_code == 303
        yield url, signed_in.cookies[COOKIE]


def test_the_token_list_shows_the_sessions_a_shorter_lifetime_ended(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    data.passphrase().set(PASSPHRASE)
    with WebSessions.open(data.path, lifetime_s=12 * 3600) as sessions:
        old = sessions.start("from the desk")  # made to last 12 hours, begun 90 minutes ago
        with sessions.engine.begin() as conn:
            began = to_iso(utc_now() - timedelta(minutes=90))
            conn.execute(sa.update(tokens).values(created_at=began))
        sessions.start("from the laptop")  # begun now
    where = ["--data-dir", str(data.path)]
    with WebProcess(data.path, "--host", "0.0.0.0", "--session-hours", "1") as web:
        listed = runner.invoke(app, ["web", "token", "list", "--json", *where])
        assert listed.exit_code == 0, listed.output
        states = {t["label"]: t["state"] for t in json.loads(listed.stdout)}
        assert states == {"session from the desk": "expired", "session from the laptop": "live"}
        url = web.url.replace("0.0.0.0", "127.0.0.1")
        page = httpx.get(url + "/", cookies={COOKIE: old})
        assert page.status_code == 303  # to the login form: the server ended it too


def test_off_loopback_a_signed_in_socket_opens_only_from_the_app_s_own_pages(
    tmp_path: Path,
) -> None:
    with signed_in_off_loopback(tmp_path) as (url, session):
        cookie = f"{COOKIE}={session}"
        socket_url = (
            url.replace("http:", "ws:") + "/_nicegui_ws/socket.io/?EIO=4&transport=websocket"
        )
        with connect(socket_url, origin=Origin(url), additional_headers={"cookie": cookie}) as ws:
            assert str(ws.recv(timeout=10)).startswith("0{")  # Engine.IO's open packet
        # A page of another app on this host (the same site: the cookie goes with it).
        elsewhere = Origin(url.rsplit(":", 1)[0] + ":1")
        with pytest.raises(InvalidStatus) as refused:
            connect(socket_url, origin=elsewhere, additional_headers={"cookie": cookie})
        assert refused.value.response.status_code == 403
        posted = httpx.post(
            url + "/login", data={"passphrase": PASSPHRASE}, headers={"origin": str(elsewhere)}
        )
        assert posted.status_code == 403


def test_signing_out_takes_a_post_from_the_app_s_own_pages(tmp_path: Path) -> None:
    with signed_in_off_loopback(tmp_path) as (url, session):
        cookies = {COOKIE: session}
        # An image on a page of another app on this host: the same site, so the cookie
        # goes with it, and a GET names no origin.
        asked = httpx.get(url + auth.LOGOUT_PATH, cookies=cookies)
        assert asked.status_code == 200  # a typed address or an old bookmark: a page
        assert "Sign out?" in asked.text
        assert f'method="post" action="{auth.LOGOUT_PATH}"' in asked.text
        elsewhere = url.rsplit(":", 1)[0] + ":1"
        refused = httpx.post(url + auth.LOGOUT_PATH, cookies=cookies, headers={"origin": elsewhere})
        assert refused.status_code == 403
        still = httpx.get(url + "/", cookies=cookies)
        assert still.status_code == 200  # signed in still
        out = httpx.post(url + auth.LOGOUT_PATH, cookies=cookies, headers={"origin": url})
        assert out.status_code == 303
        assert out.headers["location"] == auth.LOGIN_PATH
        assert httpx.get(url + "/", cookies=cookies).status_code == 303
        again = httpx.get(url + auth.LOGOUT_PATH, cookies=cookies)
        assert again.status_code == 200
        assert "You are not signed in." in again.text
        assert f'href="{auth.LOGIN_PATH}"' in again.text
        assert "<form" not in again.text


def test_sessions_signed_out_meanwhile_do_not_stop_the_others_ending(
    sessions: WebSessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = [sessions.start(f"from 10.0.0.{n}") for n in range(3)]
    access, token = sessions.create_access("phone")
    by_token = [sessions.exchange(access, f"from phone {n}") or "" for n in range(3)]
    revoke = sessions.tokens.revoke
    signing_out: list[str] = []

    def as_one_signs_out(token_id: str, *, actor: str | None = None) -> Any:
        # A browser signs out just as its session is about to be revoked.
        while signing_out:
            if (found := sessions.check(signing_out.pop())) is not None:
                revoke(found.id, actor="web logout")
        return revoke(token_id, actor=actor)

    monkeypatch.setattr(sessions.tokens, "revoke", as_one_signs_out)
    signing_out.append(secrets[1])
    assert sessions.end_passphrase_sessions(actor="pjai web passphrase") == 2
    assert not any(sessions.valid(s) for s in secrets)
    signing_out.append(by_token[1])
    sessions.revoke(token.id, actor="ada")
    assert not any(sessions.valid(s) for s in by_token)
    last = sessions.start("from 10.0.0.9")
    signing_out.append(last)  # signed out from two tabs at once
    sessions.end(last)
    assert not any(t.live() for t in sessions.list())


@pytest.mark.anyio
async def test_a_sign_in_beyond_the_checks_that_may_wait_is_asked_to_try_again(
    tmp_path: Path, sessions: WebSessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flood of tries from many addresses: the checks that may wait are queued, each
    answered; one more is told at once to come back, not left waiting behind them."""
    monkeypatch.setattr(auth, "CHECKS_WAITING", 4)
    release = threading.Event()

    class Slow(Passphrase):
        def check(self, given: str) -> bool:
            release.wait(10)  # until every try is in
            return super().check(given)

    passphrase = Slow(Passphrase.of(tmp_path).path)
    passphrase.set(PASSPHRASE)
    throttle = auth.LoginThrottle()

    async def submit(request: Request) -> Response:
        return await auth.login_submit(request, passphrase, sessions, throttle)

    app = Starlette(routes=[Route(auth.LOGIN_PATH, submit, methods=["POST"])])
    transport = httpx.ASGITransport(app, client=("203.0.113.1", 1234))
    clients = [
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app, client=(f"203.0.113.{n}", 1234)),
            base_url="http://app",
        )
        for n in range(1, auth.CHECKS_WAITING + 2)
    ]
    waiting = [
        asyncio.create_task(c.post(auth.LOGIN_PATH, data={"passphrase": "guess"}))
        for c in clients[:-1]
    ]
    async with asyncio.timeout(10):
        while throttle.checking < auth.CHECKS_WAITING:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    one_more = await clients[-1].post(auth.LOGIN_PATH, data={"passphrase": PASSPHRASE})
    assert one_more.status_code == 503
    assert one_more.headers["retry-after"] == "2"
    assert "Too many sign-ins at once" in one_more.text
    release.set()
    answers = await asyncio.gather(*waiting)
    assert [a.status_code for a in answers] == [401] * auth.CHECKS_WAITING
    for c in clients:
        await c.aclose()
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        answer = await client.post(auth.LOGIN_PATH, data={"passphrase": PASSPHRASE})
    assert answer.status_code == 303  # the queue is free again
