"""Event records as a synced store logs them, for sync tests."""

from __future__ import annotations

import msgspec

from pjai.schema.records import EventRecord
from pjai.store import Store
from tests.helpers import memory, persona


def records(count: int, persona_id: str = "p1", client_id: str = "c1") -> list[EventRecord]:
    """A persona and ``count - 1`` memories, committed in a fresh synced store, as if
    by client ``client_id`` (the one the sync tests' hellos name)."""
    with Store.memory(sync=True) as store:
        events = [persona(persona_id)] + [
            memory(f"{persona_id}-m{i}", persona_id) for i in range(count - 1)
        ]
        return [
            msgspec.structs.replace(record, client_id=client_id) for record in store.commit(*events)
        ]
