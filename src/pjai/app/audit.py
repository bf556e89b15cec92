"""The audit trail of configuration: the ``v1.ConfigChanged`` events of the log."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from pjai.hybrid import HybridDatabaseManager
from pjai.schema import ConfigChanged
from pjai.schema.records import EventRecord

__all__ = ["ConfigChange", "config_changes"]


@dataclass(frozen=True, slots=True)
class ConfigChange:
    """One recorded change of a setting: when, which, from what to what, where it was
    made (``source``) and by which installation (``client_id``)."""

    event_id: str
    position: int
    at: datetime
    client_id: str
    key: str
    old: bool | int | float | str | None
    new: bool | int | float | str | None
    source: str
    persona_id: str | None


def config_changes(
    manager: HybridDatabaseManager, *, persona_id: str | None = None
) -> list[ConfigChange]:
    """The configuration changes in the event log, oldest first; ``persona_id``: only
    that persona's (its privacy settings).

    The log is the store's with the store on (with this instance's unconfirmed changes
    when syncing; those a sync rejected are left out), else SQL's journal.
    """
    store = manager.store
    records: Iterable[EventRecord]
    if store is not None:
        records = (e.record for e in store.events() if e.status != "rejected")
    else:
        records = manager.shards.journal()
    found: list[ConfigChange] = []
    for record in records:
        if record.name != ConfigChanged.NAME:
            continue
        change = manager.schema.decode(record.name, bytes(record.args), event_id=record.id)
        assert isinstance(change, ConfigChanged)
        if persona_id is not None and change.persona_id != persona_id:
            continue
        found.append(
            ConfigChange(
                record.id,
                record.position.global_seq,
                record.at,
                record.client_id,
                change.key,
                change.old,
                change.new,
                change.source,
                change.persona_id,
            )
        )
    return found
