"""Convergence: clients commit, disconnect, reconnect, the server restarts; all agree.

A Hypothesis state machine drives 3 to 5 SyncClients against a hub in memory. After
quiescence every client's state equals a fresh replay of the server's log, and every
client's SQL primary (each client is a hybrid manager) holds that log's events, in its
order, and the same rows as its store.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from pjai.errors import PjaiError
from pjai.hybrid import HybridDatabaseManager
from pjai.schema import Event
from pjai.schema.records import Position
from pjai.sql import journal
from pjai.store import Store
from pjai.sync.client import SyncClient
from pjai.sync.server.hub import Hub
from pjai.sync.server.log import MemoryLog
from pjai.sync.transport import Transport
from tests.helpers import memory, persona
from tests.strategies import PERSONAS, SEEDED, events, owner


def replay_log(log: MemoryLog) -> str:
    with Store.memory(sync=True) as fresh:
        fresh.rebase(log.read("s1", Position(0), 1_000_000))
        return fresh.state_hash()


def sql_journal(manager: HybridDatabaseManager) -> list[str]:
    (shard,) = manager.shards
    with shard.writer.connection("reading the journal") as conn:
        return [record.id for record, _status, _error in journal.journal_entries(conn)]


class ConvergenceMachine(RuleBasedStateMachine):
    """Several clients and one server, with everything that can go wrong in between."""

    @initialize(count=st.integers(3, 5))
    def setup(self, count: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.log = MemoryLog()
        self.hub = self._hub()
        self.dir = Path(tempfile.mkdtemp(prefix="pjai-convergence-"))
        self.managers = [
            HybridDatabaseManager.open(
                self.dir / f"c{i}",
                sql_urls=[f"sqlite:///{self.dir}/c{i}.db"],
                environ={"PJAI_FLAG_SYNC": "true"},
            )
            for i in range(count)
        ]
        self.stores: list[Store] = []
        for manager in self.managers:
            assert manager.store is not None
            self.stores.append(manager.store)
        self.clients: list[SyncClient | None] = [None] * count
        self.managers[0].commit(
            *[persona(p) for p in PERSONAS], *[memory(m, owner(m)) for m in SEEDED]
        )
        for i in range(count):
            self._connect(i)
        self._quiesce()

    def _hub(self) -> Hub:
        hub = Hub(self.log, None, poll_interval=0.05)
        self.loop.run_until_complete(hub.start())
        return hub

    async def _open(self) -> Transport:
        return await self.hub.memory_connector()()

    def _connect(self, i: int) -> None:
        client = SyncClient(
            self.stores[i], self._open, store_id="s1", backoff=(0.001, 0.01), seed=i
        )
        self.clients[i] = client
        self.loop.call_soon(client.start)

    def _step(self, turns: int = 20) -> None:
        for _ in range(turns):
            self.loop.run_until_complete(asyncio.sleep(0))

    def _quiesce(self) -> None:
        for i, client in enumerate(self.clients):
            if client is None:
                self._connect(i)

        async def everyone_level() -> None:
            async with asyncio.timeout(20):
                for client in self.clients:
                    assert client is not None
                    await client.wait_until(lambda s: s.level)
                heads = {c.status.confirmed_head for c in self.clients if c is not None}
                if len(heads) > 1:  # someone pushed after another was level: go round again
                    for client in self.clients:
                        assert client is not None
                        await client.wait_until(
                            lambda s: s.level and s.confirmed_head >= max(heads)
                        )

        try:
            self.loop.run_until_complete(everyone_level())
        except TimeoutError:
            statuses = "\n".join(str(c.status) for c in self.clients if c is not None)
            raise AssertionError(f"the clients did not level out:\n{statuses}") from None

    async def _sql_caught_up(self) -> None:
        """SQL follows each store a moment after its rebase commits."""
        async with asyncio.timeout(10):
            while any(m.bridge.checkpoint() < m.head() for m in self.managers):  # noqa: ASYNC110
                await asyncio.sleep(0.005)

    @rule(client=st.integers(0, 4), batch=st.lists(events(), min_size=1, max_size=3))
    def commit(self, client: int, batch: list[Event]) -> None:
        manager = self.managers[client % len(self.managers)]
        with contextlib.suppress(PjaiError):  # refused locally: nothing was written
            manager.commit(*batch)
        self._step()

    @rule(client=st.integers(0, 4))
    def disconnect(self, client: int) -> None:
        i = client % len(self.stores)
        found = self.clients[i]
        if found is not None:
            self.loop.run_until_complete(found.stop())
            self.clients[i] = None

    @rule(client=st.integers(0, 4))
    def reconnect(self, client: int) -> None:
        i = client % len(self.stores)
        if self.clients[i] is None:
            self._connect(i)
        self._step()

    @precondition(lambda self: hasattr(self, "hub"))
    @rule()
    def restart_server(self) -> None:
        self.loop.run_until_complete(self.hub.stop())
        self.hub = self._hub()
        self._step()

    @rule()
    def let_messages_flow(self) -> None:
        self._step(100)

    def teardown(self) -> None:
        if not hasattr(self, "loop"):
            return
        try:
            self._quiesce()
            final = replay_log(self.log)
            server = [r.id for r in self.log.read("s1", Position(0), 1_000_000)]
            self.loop.run_until_complete(self._sql_caught_up())
            for store, manager in zip(self.stores, self.managers, strict=True):
                assert store.pending() == []
                assert store.state_hash() == final
                assert sql_journal(manager) == server
                assert manager.verify().equal
        finally:
            for client in self.clients:
                if client is not None:
                    self.loop.run_until_complete(client.stop())
            self.loop.run_until_complete(self.hub.stop())
            for manager in self.managers:
                manager.close()
            self.loop.close()
            shutil.rmtree(self.dir, ignore_errors=True)


ConvergenceMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_clients_converge = ConvergenceMachine.TestCase
