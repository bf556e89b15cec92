"""`SyncServer`: one resource from database to uvicorn, served in a loop or a thread."""

from __future__ import annotations

import asyncio
import logging
import socket
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from pjai.errors import ConfigError, PjaiError
from pjai.schema.types import utc_now
from pjai.store import Store
from pjai.sync import SyncClient, websocket_connector
from pjai.sync.protocol import MAX_EVENTS_PER_FRAME, MAX_FRAME_BYTES
from pjai.sync.server import SERVER_FILE, ServerConfig, SyncServer
from tests.helpers import memory, persona

WAIT = 30  # seconds before a wait counts as a hang


def refused(base_url: str) -> bool:
    """Whether nothing listens at ``base_url`` any more."""
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=WAIT).close()
    except ConnectionRefusedError:
        return True
    return False


def test_a_data_file_served_in_a_thread(tmp_path: Path) -> None:
    with SyncServer.open(tmp_path / SERVER_FILE) as server:
        assert server.storage == f"sqlite:///{tmp_path / SERVER_FILE}"
        url = server.start_thread()
        assert server.sync_url == url.replace("http://", "ws://") + "/sync"
        health = httpx.get(f"{url}/health", timeout=WAIT).json()
        assert (health["status"], health["backend_id"]) == ("ok", server.backend_id)
    assert (tmp_path / SERVER_FILE).exists()
    assert refused(url)
    with pytest.raises(PjaiError, match="not listening"):
        _ = server.base_url


def test_pushes_are_limited_in_bytes_as_well_as_events(tmp_path: Path) -> None:
    config = ServerConfig(rate=10.0, byte_rate=1024.0)
    with SyncServer.open(tmp_path / SERVER_FILE, config) as server:
        events, size = server.hub.limiter, server.hub.byte_limiter
        assert events is not None
        assert size is not None
        assert (events.rate, size.rate) == (10.0, 1024.0)
        # A low rate still lets every push through, one at a time.
        assert (events.burst, size.burst) == (MAX_EVENTS_PER_FRAME, MAX_FRAME_BYTES)
    assert ServerConfig().byte_rate == 16 * 1024 * 1024


def test_a_low_request_or_connection_rate_still_lets_one_through(tmp_path: Path) -> None:
    config = ServerConfig(request_rate=0.05, connection_rate=0.05)
    with SyncServer.open(tmp_path / SERVER_FILE, config) as server:
        requests = server.hub.request_limiter
        assert requests is not None
        assert (requests.rate, requests.burst) == (0.05, 1)
        assert requests.take("t1", 1) == 0  # one request, then one every 20 s
        assert server.hub.opening("10.0.0.1") is None
        too_soon = server.hub.opening("10.0.0.1")
        assert too_soon is not None
        assert too_soon.retry_after == pytest.approx(20, abs=0.1)


@pytest.mark.parametrize("field", ["rate", "byte_rate", "request_rate", "connection_rate"])
@pytest.mark.parametrize("value", [0.0, -1.0, float("nan"), float("inf")])
def test_a_rate_must_be_a_number_above_zero(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=rf"^ServerConfig.{field} must be a number above 0"):
        ServerConfig(**{field: value})


@pytest.mark.anyio
async def test_a_url_served_in_the_event_loop_syncs_a_client(tmp_path: Path) -> None:
    async with SyncServer.open(f"sqlite:///{tmp_path / 'sync.db'}") as server:
        assert server.database is not None
        secret, _ = server.database.tokens.create("s1", "write")
        url = await server.start()
        with Store.memory(sync=True) as store:
            client = SyncClient(store, websocket_connector(server.sync_url, secret), store_id="s1")
            client.start()
            records = store.commit(persona("p1"), memory("m1"))
            async with asyncio.timeout(WAIT):
                assert await client.synced(records[-1].id) == "confirmed"
            await client.stop()
        assert server.hub.log.head("s1").global_seq == 2
    assert refused(url)


@pytest.mark.anyio
async def test_close_refuses_a_server_serving_in_an_event_loop(tmp_path: Path) -> None:
    server = SyncServer.open(tmp_path / SERVER_FILE)
    url = await server.start()
    with pytest.raises(RuntimeError, match="await aclose"):
        server.close()
    await server.aclose()
    assert refused(url)


def test_it_serves_once(tmp_path: Path) -> None:
    with SyncServer.open(tmp_path / SERVER_FILE) as server:
        server.start_thread()
        with pytest.raises(PjaiError, match="serves once"):
            server.start_thread()
    with pytest.raises(PjaiError, match="closed"):
        server.start_thread()


def test_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with (
            SyncServer.open(tmp_path / SERVER_FILE) as server,
            pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}: the port is in"),
        ):
            server.start_thread(port=port)


def test_a_bad_database_url_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="'nonsense' is not a database URL"):
        SyncServer.open("nonsense")


def test_it_says_when_every_client_would_be_refused(tmp_path: Path) -> None:
    with SyncServer.open(tmp_path / SERVER_FILE) as server:
        assert server.database is not None
        assert server.refuses_everyone()  # no tokens yet
        _, token = server.database.tokens.create("s1", "read")
        assert not server.refuses_everyone()
        server.database.tokens.revoke(token.id)
        assert server.refuses_everyone()
        # An expired token refuses its clients as a revoked one does.
        server.database.tokens.create("s1", "read", not_after=utc_now() - timedelta(hours=1))
        assert server.refuses_everyone()
    with SyncServer.open(tmp_path / SERVER_FILE, ServerConfig(require_tokens=False)) as open_door:
        assert not open_door.refuses_everyone()


@pytest.mark.anyio
async def test_clients_that_leave_are_not_errors(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A client stopping, or dropping its connection, is logged at most as information."""
    config = ServerConfig(require_tokens=False)
    caplog.set_level("DEBUG")
    async with SyncServer.open(tmp_path / SERVER_FILE, config) as server:
        await server.start()
        with Store.memory(sync=True) as store:
            client = SyncClient(store, websocket_connector(server.sync_url), store_id="s1")
            client.start()
            (record,) = store.commit(persona("p1"))
            async with asyncio.timeout(WAIT):
                assert await client.synced(record.id) == "confirmed"
            await client.stop()  # a clean close
            dropped = await websocket_connector(server.sync_url)()
            await dropped.close()  # a connection that leaves before saying hello
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert noisy == [], [r.getMessage() for r in noisy]
