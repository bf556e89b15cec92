"""Login off loopback: the passphrase file, sessions that expire, the gate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import nicegui
import pytest
from starlette.responses import PlainTextResponse
from typer.testing import CliRunner

from pjai.app import DataDir, Passphrase
from pjai.cli import app
from pjai.errors import ConfigError
from pjai.web.auth import COOKIE, LoginGate, Sessions
from pjai.web.server import is_loopback

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


def test_a_damaged_passphrase_file_says_how_to_mend_it(tmp_path: Path) -> None:
    found = Passphrase.of(tmp_path)
    found.path.write_text(json.dumps({"salt": "zz"}))
    with pytest.raises(ConfigError, match="set the passphrase again"):
        found.check("whatever it is")


def test_sessions_expire() -> None:
    now = [100.0]
    sessions = Sessions(60, clock=lambda: now[0])
    token = sessions.start()
    assert sessions.valid(token)
    assert not sessions.valid("made-up")
    assert not sessions.valid(None)
    now[0] += 61
    assert not sessions.valid(token)


def test_sessions_end_on_logout() -> None:
    sessions = Sessions(60)
    token = sessions.start()
    sessions.end(token)
    assert not sessions.valid(token)


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


def test_the_passphrase_command_reads_standard_input(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["web", "passphrase", "--data-dir", str(tmp_path)], input="twelve chars or more\n"
    )
    assert result.exit_code == 0, result.output
    assert DataDir(tmp_path).passphrase().check("twelve chars or more")
    result = runner.invoke(app, ["web", "passphrase", "--clear", "--data-dir", str(tmp_path)])
    assert "Passphrase removed." in result.output
    assert not DataDir(tmp_path).passphrase().is_set


def gated(sessions: Sessions) -> httpx.AsyncClient:
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
    ],
)
async def test_the_gate_sends_every_page_to_the_login(path: str) -> None:
    async with gated(Sessions(60)) as client:
        answer = await client.get(path)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=")


@pytest.mark.anyio
@pytest.mark.parametrize(
    "path", ["/login", "/favicon.ico", f"/_nicegui/{nicegui.__version__}/static/x.js"]
)
async def test_the_gate_lets_the_form_and_nicegui_s_scripts_through(path: str) -> None:
    async with gated(Sessions(60)) as client:
        assert (await client.get(path)).text == "the page"


@pytest.mark.anyio
async def test_the_gate_lets_a_session_through() -> None:
    sessions = Sessions(60)
    async with gated(sessions) as client:
        client.cookies.set(COOKIE, sessions.start())
        assert (await client.get("/personas")).text == "the page"


@pytest.mark.anyio
async def test_the_gate_closes_a_socket_without_a_session() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(dict(message))

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    scope = {"type": "websocket", "path": "/_nicegui_ws/socket.io/", "headers": []}
    await LoginGate(_page, Sessions(60))(scope, receive, send)
    assert sent == [{"type": "websocket.close", "code": 4401}]


async def _page(scope: Any, receive: Any, send: Any) -> None:
    await PlainTextResponse("the page")(scope, receive, send)
