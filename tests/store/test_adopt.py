"""A synced store adopts another history's events as its own pending events."""

from __future__ import annotations

import pytest

from pjai.errors import StoreError
from pjai.store import Store
from tests.helpers import history, memory, persona


def test_adopted_events_keep_their_identity_and_wait_to_be_pushed() -> None:
    elsewhere = history([persona("p1"), memory("m1"), memory("m2", persona_id="gone")])
    with Store.memory(sync=True) as store:
        (own,) = store.commit(persona("p0"))
        assert store.adopt(elsewhere) == 2
        pending = store.pending()
        assert [r.id for r in pending] == [own.id, elsewhere[0].id, elsewhere[1].id]
        assert [r.position.global_seq for r in pending] == [1, 2, 3]
        assert [r.at for r in pending[1:]] == [r.at for r in elsewhere[:2]]
        assert {r.client_id for r in pending} == {store.client_id}  # pushed as its own
        assert [r.session_id for r in pending[1:]] == [r.session_id for r in elsewhere[:2]]
        assert elsewhere[0].session_id != store.session_id
        assert store.query("SELECT count(*) AS n FROM memories")[0].n == 1
        # The memory of a persona this store does not have is kept as rejected.
        (rejected,) = store.rejected()
        assert rejected.record.id == elsewhere[2].id
        with pytest.raises(StoreError, match="already in this store"):
            store.adopt(elsewhere[:1])


def test_a_standalone_store_ingests_instead() -> None:
    with Store.memory() as store, pytest.raises(StoreError, match="ingest"):
        store.adopt(history([persona("p1")]))
