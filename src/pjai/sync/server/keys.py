"""The keys channel: wrapped keys the devices of a store share through the sync server.

A device puts the keys it has (the store key wrapped by the passphrase, each data key
wrapped by the store key: the server can open none of them), gets the ones it lacks,
and deletes the ones it destroyed (an erasure): a deleted key keeps its id on the
server, without its wrapped bytes, so that every device learns to destroy its copy. A
deleted key cannot be put back. Reading needs the ``read`` role, putting and deleting
``write`` (HTTP: ``GET /keys``, ``POST /keys``, ``POST /keys/delete``,
docs/sync-protocol.md).
"""

from __future__ import annotations

from typing import Annotated, Literal, Protocol

import msgspec
import sqlalchemy as sa
from msgspec import Meta

from pjai.schema.types import to_iso, utc_now
from pjai.sync.server.tables import ensure_tables, keys, transaction

__all__ = ["MAX_KEYS", "KeyBox", "KeyItem", "MemoryKeys", "SqlKeys"]

MAX_KEYS = 1_000
"""The most keys one request puts or deletes."""


class KeyItem(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One wrapped key: ``wrap`` (the store key, wrapped by a passphrase) or ``data`` (a
    persona's data key, wrapped by the store key), its scope, and the wrapped bytes as
    the device encoded them."""

    id: Annotated[str, Meta(min_length=1, max_length=64)]
    kind: Literal["wrap", "data"]
    scope: Annotated[str, Meta(max_length=100)] = ""
    blob: Annotated[str, Meta(min_length=1, max_length=4096)]


class KeyBox(Protocol):
    """Where a server keeps the keys of its stores."""

    def put(self, store_id: str, items: list[KeyItem]) -> int:
        """Keep ``items`` (those deleted before stay deleted); how many were new."""
        ...

    def get(self, store_id: str) -> tuple[list[KeyItem], list[str]]:
        """The store's keys, and the ids of those deleted."""
        ...

    def delete(self, store_id: str, ids: list[str]) -> int:
        """Delete the keys ``ids`` (forgetting their bytes); how many were there."""
        ...


class MemoryKeys:
    """A :class:`KeyBox` in memory (tests, a server without a database)."""

    def __init__(self) -> None:
        self._items: dict[str, dict[str, KeyItem | None]] = {}

    def put(self, store_id: str, items: list[KeyItem]) -> int:
        """See :class:`KeyBox`."""
        kept = self._items.setdefault(store_id, {})
        new = [i for i in items if i.id not in kept]
        kept.update((i.id, i) for i in new)
        return len(new)

    def get(self, store_id: str) -> tuple[list[KeyItem], list[str]]:
        """See :class:`KeyBox`."""
        kept = self._items.get(store_id, {})
        return [i for i in kept.values() if i is not None], [
            k for k, i in kept.items() if i is None
        ]

    def delete(self, store_id: str, ids: list[str]) -> int:
        """See :class:`KeyBox`."""
        kept = self._items.setdefault(store_id, {})
        found = sum(1 for i in ids if kept.get(i) is not None)
        kept.update((i, None) for i in ids)
        return found


class SqlKeys:
    """A :class:`KeyBox` in the sync server's database."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        ensure_tables(engine)

    def put(self, store_id: str, items: list[KeyItem]) -> int:
        """See :class:`KeyBox`."""
        now = to_iso(utc_now())
        with transaction(self.engine, "keeping keys", write=True) as conn:
            known = {
                row.id
                for row in conn.execute(
                    sa.select(keys.c.id).where(
                        keys.c.store_id == store_id, keys.c.id.in_([i.id for i in items])
                    )
                )
            }
            new = [i for i in items if i.id not in known]
            if new:
                conn.execute(
                    sa.insert(keys),
                    [
                        {"store_id": store_id, "id": i.id, "kind": i.kind, "scope": i.scope,
                         "blob": i.blob, "created_at": now}
                        for i in new
                    ],
                )  # fmt: skip
        return len(new)

    def get(self, store_id: str) -> tuple[list[KeyItem], list[str]]:
        """See :class:`KeyBox`."""
        query = sa.select(keys.c.id, keys.c.kind, keys.c.scope, keys.c.blob).where(
            keys.c.store_id == store_id
        )
        with transaction(self.engine, "reading keys") as conn:
            rows = conn.execute(query.order_by(keys.c.created_at, keys.c.id)).all()
        live = [KeyItem(id=r.id, kind=r.kind, scope=r.scope, blob=r.blob) for r in rows if r.blob]
        return live, [r.id for r in rows if r.blob is None]

    def delete(self, store_id: str, ids: list[str]) -> int:
        """See :class:`KeyBox`."""
        now = to_iso(utc_now())
        with transaction(self.engine, "deleting keys", write=True) as conn:
            done = conn.execute(
                sa.update(keys)
                .where(keys.c.store_id == store_id, keys.c.id.in_(ids), keys.c.blob.is_not(None))
                .values(blob=None, deleted_at=now)
            ).rowcount
            absent = set(ids) - {
                r.id
                for r in conn.execute(
                    sa.select(keys.c.id).where(keys.c.store_id == store_id, keys.c.id.in_(ids))
                )
            }
            if absent:  # deleted before they were ever put: remembered as deleted
                conn.execute(
                    sa.insert(keys),
                    [
                        {"store_id": store_id, "id": i, "kind": "data", "scope": "",
                         "blob": None, "created_at": now, "deleted_at": now}
                        for i in sorted(absent)
                    ],
                )  # fmt: skip
        return int(done)
