"""The collaboration view: who else is on the store, from the sync client's status."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from nicegui import ElementFilter, ui
from nicegui.testing.user import User

from pjai.app import DataDir
from pjai.web import WebApp
from tests.helpers import history, persona
from tests.web.conftest import simulated

pytestmark = pytest.mark.anyio


async def test_a_directory_that_does_not_sync_says_so(web: WebApp) -> None:
    async with simulated(web) as user:
        await user.open("/collaboration")
        await user.should_see("This data directory does not sync")


def _status(
    data: DataDir, peers: list[dict[str, object]], state: str = "online", **more: object
) -> None:
    """The status file a running `pjai sync connect` writes (this process stands for it)."""
    body = {
        **more,
        "state": state,
        "pid": os.getpid(),
        "url": "ws://server/sync",
        "store_id": "team",
        "server_head": 0,
        "peers": peers,
    }
    data.sync_status_path.write_text(json.dumps(body))


async def test_the_others_on_the_store_are_listed_as_they_come_and_go(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data", environ={"PJAI_FLAG_SYNC": "true"})
    with WebApp(data) as web:
        async with simulated(web) as user:
            await user.open("/collaboration")
            await user.should_see("No sync client runs for this directory")
            _status(data, [])
            # The view reads the status file once a second: wait up to 5 reads.
            await user.should_see("No one else is on this store now", retries=50)
            now = datetime.now(UTC).isoformat()
            desk = {"name": "desk", "state": "online", "client_id": "c2", "last_seen": now}
            _status(data, [{**desk, "detail": {"view": "personas"}}])
            await user.should_see("desk", retries=50)
            await user.should_see("view personas")
            _status(data, [])
            await user.should_not_see("desk", retries=50)
            # Offline, the others are unknown, not absent: the view says why.
            _status(data, [], "offline", last_error="connection refused")
            await user.should_see("Not connected: connection refused", retries=50)
            await user.should_not_see("No one else is on this store now")


async def test_changes_from_other_instances_are_listed_and_the_new_ones_stand_out(
    tmp_path: Path,
) -> None:
    data = DataDir(tmp_path / "data", environ={"PJAI_FLAG_SYNC": "true"})
    with WebApp(data) as web:
        store = web.manager.store
        assert store is not None
        web.manager.commit(persona("mine"))  # this instance's own: not listed
        upstream = history([persona("p1"), persona("p2")], client_id="other-instance-0001")
        store.rebase(upstream[:1])
        async with simulated(web) as user:
            await user.open("/collaboration")
            await user.should_see("Changes from the others")
            await user.should_see("client …nce-0001")
            assert not _marked_new(user)  # what was there when the page opened
            store.rebase(upstream[1:])
            await user.should_see("e2", retries=30)
            assert _marked_new(user) == 1


async def test_the_names_others_announce_show_direction_overrides_as_marks(
    tmp_path: Path,
) -> None:
    data = DataDir(tmp_path / "data", environ={"PJAI_FLAG_SYNC": "true"})
    with WebApp(data) as web:
        store = web.manager.store
        assert store is not None
        store.rebase(history([persona("p1")], client_id="other-instance-0001"))
        now = datetime.now(UTC).isoformat()
        desk = {"name": "desk \u202eevil", "state": "online", "last_seen": now}
        _status(data, [{**desk, "client_id": "other-instance-0001", "detail": {"v": "\u202ex"}}])
        async with simulated(web) as user:
            await user.open("/collaboration")
            await user.should_see("desk ⟦RLO⟧evil", retries=50)
            await user.should_see("v ⟦RLO⟧x")
            with user:
                labels = [str(e.text) for e in ElementFilter(kind=ui.label)]
            assert labels.count("desk ⟦RLO⟧evil") == 2  # the peer, and who made the change
            assert not [text for text in labels if "\u202e" in text]


def _marked_new(user: User) -> int:
    with user:
        return sum(
            1
            for e in ElementFilter(kind=ui.row)
            if "data-new" in e.props and e.props.get("data-testid") == "others-change"
        )
