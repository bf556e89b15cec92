"""`pjai sync-server`: tokens through the CLI, and `serve` as a real process on SQLite."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from pjai.cli import app
from pjai.errors import ConfigError
from pjai.schema.records import Position
from pjai.store import Store
from pjai.sync.client import SyncClient
from pjai.sync.server import ServerConfig, ServerDatabase, SyncServer
from pjai.sync.transport import ConnectionClosed, Connector, Transport
from pjai.sync.websocket import websocket_connector
from tests.helpers import memory, persona

runner = CliRunner()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def cli(*args: str, env: dict[str, str] | None = None) -> str:
    result = runner.invoke(app, ["sync-server", *args], env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


def replay(url: str, store_id: str) -> tuple[list[str], str]:
    """The event ids in the server's log of ``store_id``, and the state they replay to."""
    with ServerDatabase.open(url) as database:
        records = database.log.read(store_id, Position(0), 1_000_000)
    with Store.memory(sync=True) as fresh:
        fresh.rebase(records)
        return [r.id for r in records], fresh.state_hash()


class ServerProcess:
    """A `pjai sync-server serve` child process, once it printed its listening line."""

    def __init__(self, process: asyncio.subprocess.Process, line: str, log: Path) -> None:
        found = re.search(r"listening on (http://\S+):(\d+) \(backend ([^,]+),", line)
        if found is None:
            raise AssertionError(f"the server did not start: {line!r}\n{log.read_text()}")
        self.process = process
        self.url = f"{found[1]}:{found[2]}"
        self.port = int(found[2])
        self.backend_id = found[3]
        self.log = log

    @property
    def sync_url(self) -> str:
        return self.url.replace("http://", "ws://", 1) + "/sync"

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send ``sig``; the exit status once the process ended."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)
        return await self.wait()

    def kill(self) -> None:
        """SIGKILL: no shutdown at all."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):  # it just ended by itself
                self.process.kill()

    async def wait(self) -> int:
        async with asyncio.timeout(15):
            await self.process.communicate()  # to the end of stdout: the pipe closes too
        assert self.process.returncode is not None
        return self.process.returncode


@contextlib.asynccontextmanager
async def server_processes(
    *args: str, logs: Sequence[Path], port: int = 0
) -> AsyncIterator[list[ServerProcess]]:
    """Run ``pjai sync-server serve --port PORT ARGS`` once per log file, side by side.

    Yields once each has printed its listening line; kills those still running after.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("PJAI_SYNC_DB", "PJAI_DATA_DIR")}
    command = [sys.executable, "-m", "pjai", "sync-server", "serve", "--port", str(port), *args]
    processes: list[asyncio.subprocess.Process] = []
    try:
        for log in logs:
            with log.open("ab") as stderr:
                processes.append(
                    await asyncio.create_subprocess_exec(
                        *command, stdout=asyncio.subprocess.PIPE, stderr=stderr, env=env
                    )
                )
        servers = []
        async with asyncio.timeout(20):
            for process, log in zip(processes, logs, strict=True):
                assert process.stdout is not None
                line = (await process.stdout.readline()).decode()
                servers.append(ServerProcess(process, line, log))
        yield servers
    finally:
        for process in processes:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
        async with asyncio.timeout(15):
            for process in processes:
                await process.communicate()


@contextlib.asynccontextmanager
async def server_process(*args: str, log: Path, port: int = 0) -> AsyncIterator[ServerProcess]:
    """One :func:`server_processes`."""
    async with server_processes(*args, logs=[log], port=port) as (server,):
        yield server


# -- tokens ------------------------------------------------------------------------


def test_token_create_list_revoke(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    secret = cli("token", "create", "--store", "s1", "--role", "write", "--name", "laptop", *data)
    secret = secret.strip()
    assert secret.startswith("pjai_")
    assert (tmp_path / "sync-server.db").exists()
    admin = json.loads(cli("token", "create", "--store", "*", "--role", "admin", "--json", *data))
    assert admin["secret"].startswith("pjai_")
    assert (admin["store_id"], admin["role"], admin["revoked_at"]) == ("*", "admin", None)

    listed = cli("token", "list", "--json", *data)
    assert secret not in listed
    assert admin["secret"] not in listed
    tokens = json.loads(listed)
    assert [(t["label"], t["store_id"], t["role"]) for t in tokens] == [
        ("laptop", "s1", "write"),
        ("", "*", "admin"),
    ]
    assert all("secret" not in t and "digest" not in t for t in tokens)
    table = cli("token", "list", *data, env={"COLUMNS": "200"})
    assert "laptop" in table
    assert tokens[0]["id"] in table
    assert secret not in table

    revoked = cli("token", "revoke", tokens[0]["id"], *data)
    assert f"Revoked token {tokens[0]['id']}" in revoked
    after = {t["id"]: t for t in json.loads(cli("token", "list", "--json", *data))}
    assert after[tokens[0]["id"]]["revoked_at"] is not None
    assert after[admin["id"]]["revoked_at"] is None
    assert [after[t["id"]]["state"] for t in tokens] == ["revoked", "live"]


def test_tokens_expire_and_rotate_through_the_cli(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    made = json.loads(
        cli("token", "create", "--store", "s1", "--role", "write", "--expires-in", "30d",
            "--json", *data)
    )  # fmt: skip
    assert made["expires_at"] > made["created_at"]
    rotated = json.loads(cli("token", "rotate", made["id"], "--overlap", "90m", "--json", *data))
    assert rotated["replaces"] == made["id"]
    assert rotated["secret"].startswith("pjai_")
    listed = {t["id"]: t for t in json.loads(cli("token", "list", "--json", *data))}
    assert listed[made["id"]]["expires_at"] < made["expires_at"]
    assert listed[rotated["id"]]["expires_at"] > made["expires_at"]  # a new 30 days
    with ServerDatabase.open(tmp_path / "sync-server.db") as database:
        assert database.tokens.check(made["secret"]) is not None  # during the overlap
        assert database.tokens.check(rotated["secret"]) is not None
    bad = runner.invoke(app, ["sync-server", "token", "create", "--store", "s", "--role",
                              "read", "--expires-in", "3x", *data],
                        env={"COLUMNS": "200"})  # fmt: skip
    assert bad.exit_code == 2
    assert "give a whole number and d, h, m or s" in bad.output
    assert "--expires-in" in bad.output


@pytest.mark.parametrize(
    ("store", "role", "said"),
    [("s1", "bogus", "role 'bogus': use read, write or admin"), ("", "read", "needs a store id")],
)
def test_a_token_asked_for_wrongly_makes_no_database(
    tmp_path: Path, store: str, role: str, said: str
) -> None:
    refused = runner.invoke(
        app,
        ["sync-server", "token", "create", "--store", store, "--role", role,
         "--data-dir", str(tmp_path)],
    )  # fmt: skip
    assert refused.exit_code == 1
    assert said in refused.output
    assert list(tmp_path.iterdir()) == []


def test_token_database_from_the_environment(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    cli("token", "create", "--store", "s1", "--role", "read", env={"PJAI_SYNC_DB": url})
    assert (tmp_path / "elsewhere.db").exists()
    listed = json.loads(cli("token", "list", "--json", "--db", url))
    assert [t["role"] for t in listed] == ["read"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["token", "create", "--store", "s1", "--role", "boss"], "role 'boss': use read, write"),
        (["token", "create", "--store", " ", "--role", "read"], "needs a store id"),
        (["token", "revoke", "no-such-id"], "no sync server database at"),
        (["token", "list", "--db", "nonsense"], "'nonsense' is not a database URL"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["sync-server", *args, "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert message in result.stderr


RATES = {
    "--event-rate": "rate",
    "--byte-rate": "byte_rate",
    "--request-rate": "request_rate",
    "--connection-rate": "connection_rate",
}


def test_serve_takes_the_rates_a_token_and_an_address_are_held_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[ServerConfig] = []

    def open_(database: str | Path, config: ServerConfig) -> SyncServer:
        opened.append(config)
        raise ConfigError("not serving in this test")

    monkeypatch.setattr(SyncServer, "open", open_)
    given = [str(v) for option, n in zip(RATES, range(1, 5), strict=True) for v in (option, n)]
    result = runner.invoke(app, ["sync-server", "serve", *given, "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "not serving in this test" in result.stderr
    (config,) = opened
    assert [getattr(config, field) for field in RATES.values()] == [1.0, 2.0, 3.0, 4.0]
    runner.invoke(app, ["sync-server", "serve", "--data-dir", str(tmp_path)])
    assert opened[-1] == ServerConfig()  # each rate's default is the server's


def test_serve_takes_each_store_s_quota(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[ServerConfig] = []

    def open_(database: str | Path, config: ServerConfig) -> SyncServer:
        opened.append(config)
        raise ConfigError("not serving in this test")

    monkeypatch.setattr(SyncServer, "open", open_)
    data = ["--data-dir", str(tmp_path)]
    for given in (["--max-store-bytes", "1000"], ["--max-store-bytes", "0"], []):
        runner.invoke(app, ["sync-server", "serve", *given, *data])
    assert [c.max_store_bytes for c in opened] == [1000, None, 4 * 1024**3]
    refused = runner.invoke(app, ["sync-server", "serve", "--max-store-bytes", "-1", *data])
    assert refused.exit_code == 2
    assert "--max-store-bytes" in refused.stderr


@pytest.mark.parametrize("option", RATES)
@pytest.mark.parametrize("value", ["0", "-2.5", "nan", "inf"])
def test_serve_refuses_a_rate_that_is_not_above_zero(
    tmp_path: Path, option: str, value: str
) -> None:
    result = runner.invoke(
        app, ["sync-server", "serve", option, value, "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 2
    said = " ".join(result.stderr.split())  # Rich wraps the message in a box
    assert f"Invalid value for '{option}': must be a number above 0, got {value}" in said
    assert list(tmp_path.iterdir()) == []  # refused before the database is made


def test_revoking_twice_is_an_error(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    made = json.loads(cli("token", "create", "--store", "s1", "--role", "read", "--json", *data))
    cli("token", "revoke", made["id"], *data)
    again = runner.invoke(app, ["sync-server", "token", "revoke", made["id"], *data])
    assert again.exit_code == 1
    assert "no live token" in again.stderr


def test_serving_on_a_port_in_use_fails(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = runner.invoke(
            app, ["sync-server", "serve", "--port", port, "--data-dir", str(tmp_path)]
        )
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}: the port is in use" in result.stderr


# -- serve, as a process -------------------------------------------------------------


@pytest.mark.anyio
async def test_serve_health_sync_and_a_clean_stop(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sync.db'}"
    secret = cli("token", "create", "--store", "s1", "--role", "write", "--db", url).strip()
    async with server_process("--db", url, log=tmp_path / "server.log") as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            health = (await http.get("/health")).json()
        assert health["status"] == "ok"
        assert health["backend_id"] == server.backend_id
        with Store.memory(sync=True) as store:
            client = SyncClient(store, websocket_connector(server.sync_url, secret), store_id="s1")
            client.start()
            records = store.commit(persona("p1"), memory("m1"))
            async with asyncio.timeout(10):
                assert await client.synced(records[-1].id) == "confirmed"
            assert client.status.backend_id == server.backend_id
            await client.stop()
        assert await server.stop() == 0
    assert "sync server stopped" in server.log.read_text()
    assert replay(url, "s1")[0] == [r.id for r in records]


class Tripwire:
    """The client's connections, which SIGKILL the server at one point of the first push.

    ``when="sent"``: as soon as the push is on the wire, so the server may or may not
    have appended it. ``when="applied"``: when the push's answer (its ack, or the echo
    of its events) arrives, so it is in the log for sure; the client never sees it.
    Either way the connection is gone for the client from then on.
    """

    def __init__(self, connect: Connector, when: str) -> None:
        self._connect = connect
        self.when = when
        self.server: ServerProcess | None = None
        self.pushed = False
        self.fired = asyncio.Event()

    async def __call__(self) -> Transport:
        return _Wired(await self._connect(), self)

    def fire(self) -> None:
        if not self.fired.is_set():
            assert self.server is not None
            self.server.kill()
            self.fired.set()


class _Wired:
    def __init__(self, inner: Transport, wire: Tripwire) -> None:
        self.inner = inner
        self.wire = wire
        self.armed = not wire.fired.is_set()

    async def send(self, frame: bytes) -> None:
        await self.inner.send(frame)
        if self.armed and json.loads(frame)["type"] == "push":
            self.wire.pushed = True
            if self.wire.when == "sent":
                self.wire.fire()

    async def receive(self) -> bytes:
        frame = await self.inner.receive()
        if self.armed and self.wire.pushed and json.loads(frame)["type"] in ("push_ack", "events"):
            self.wire.fire()
        if self.armed and self.wire.fired.is_set():
            raise ConnectionClosed("the test killed the server")
        return frame

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.inner.close(code, reason)


@pytest.mark.anyio
@pytest.mark.parametrize("when", ["sent", "applied"])
async def test_a_killed_server_loses_and_duplicates_nothing(tmp_path: Path, when: str) -> None:
    url = f"sqlite:///{tmp_path / 'sync.db'}"
    secret = cli("token", "create", "--store", "s1", "--role", "write", "--db", url).strip()
    log = tmp_path / "server.log"
    with Store.memory(sync=True) as store:
        async with server_process("--db", url, log=log) as first:
            wire = Tripwire(websocket_connector(first.sync_url, secret, open_timeout=2), when)
            wire.server = first
            client = SyncClient(store, wire, store_id="s1", backoff=(0.05, 0.5))
            client.start()
            records = store.commit(persona("p1"), memory("m1"), memory("m2"))
            async with asyncio.timeout(10):
                await wire.fired.wait()
                assert await first.wait() == -signal.SIGKILL
        assert store.status(records[-1].id) == "pending"
        async with server_process("--db", url, log=log, port=first.port) as second:
            assert second.backend_id == first.backend_id
            async with asyncio.timeout(15):
                assert await client.synced(records[-1].id) == "confirmed"
                await client.wait_until(lambda s: s.level)
            await client.stop()
            assert await second.stop(signal.SIGINT) == 0  # Ctrl-C
        logged, state = replay(url, "s1")
        assert logged == [r.id for r in records]  # each once, in commit order
        assert store.pending() == []
        assert store.state_hash() == state
