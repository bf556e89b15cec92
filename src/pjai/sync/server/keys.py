"""The keys channel: wrapped keys the devices of a store share through the sync server.

A device puts the keys it has (the store key wrapped by the passphrase, each data key
wrapped by the store key: the server can open none of them), gets the ones it lacks,
and deletes the ones it destroyed (an erasure): a deleted key keeps its id on the
server, without its wrapped bytes, with a proof made with the store key (which the
server does not have), so that every device destroys its copy only when the deletion
comes from a device of the store. A deleted key cannot be put back. A key is put with
the SHA-256 of the proof that will delete it (``check``): the server refuses a
deletion whose proof does not hash to it, so that a token holder cannot make it forget
a key's wrapped bytes, which a device joining later needs. Reading needs the
``read`` role, putting and deleting ``write`` (HTTP: ``GET /keys``, ``POST /keys``,
``POST /keys/delete``, docs/sync-protocol.md).

A deletion's wrapped bytes leave the database's files by a rewrite (:class:`SqlKeys`),
which locks the keys of every store while it runs: it runs in the background, one at a
time, and the deletions made meanwhile share the next one (:data:`REWRITE_GAP_S`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal, Protocol

import msgspec
import psycopg
import sqlalchemy as sa
from msgspec import Meta
from sqlalchemy.dialects import postgresql, sqlite

from pjai.schema.fields import ID_MAX_LENGTH
from pjai.schema.types import to_iso, utc_now
from pjai.sql.engine import empty_sqlite_log
from pjai.sync.server.tables import ensure_tables, keys, transaction

__all__ = [
    "MAX_KEYS",
    "MAX_STORE_KEYS",
    "MAX_STORE_KEY_BYTES",
    "REWRITE_GAP_S",
    "REWRITE_LOCK_WAIT_MS",
    "Deletion",
    "KeyBox",
    "KeyItem",
    "MemoryKeys",
    "SqlKeys",
    "proves",
]

log = logging.getLogger(__name__)

MAX_KEYS = 1_000
"""The most keys one request puts or deletes."""

MAX_STORE_KEYS = 100_000
"""The most keys, deleted ones included, the server keeps for one store (a store's
devices share a data key a persona and a wrap a passphrase or recovery code)."""

MAX_STORE_KEY_BYTES = 32 * 1024 * 1024
"""The most bytes of wrapped keys the server keeps for one store."""

REWRITE_GAP_S = 1.0
"""The least time from the end of one rewrite of the keys' files to the start of the
next; at least nine times as long as the last one took, too, so that rewrites lock the
keys a tenth of the time at most, however fast a write token deletes keys."""

REWRITE_LOCK_WAIT_MS = 1_000
"""How long a rewrite on PostgreSQL waits for the keys table's lock before it gives up
and runs again later: waiting, it would hold back every request for keys queued
behind it for as long as the transaction it waits for runs."""


class KeyItem(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One wrapped key: ``wrap`` (the store key, wrapped by a passphrase) or ``data`` (a
    persona's data key, wrapped by the store key), its scope, and the wrapped bytes as
    the device encoded them."""

    id: Annotated[str, Meta(min_length=1, max_length=64)]
    kind: Literal["wrap", "data"]
    scope: Annotated[str, Meta(max_length=ID_MAX_LENGTH)] = ""
    """The persona whose data key it is (any persona id an event may give), or none."""
    blob: Annotated[str, Meta(min_length=1, max_length=4096)]
    check: Annotated[str, Meta(pattern="^[0-9a-f]{64}$")] | None = None
    """The SHA-256 (hex) of the proof that deletes the key; none from an older PJai,
    whose key any deletion deletes. Kept by the server, never listed."""


def proves(deletion: Deletion, check: str | None) -> bool:
    """Whether ``deletion``'s proof is the one a key put with ``check`` committed to
    (any, for a key put with none)."""
    if check is None:
        return True
    return hmac.compare_digest(_hash(deletion).encode(), check.encode())


def _hash(deletion: Deletion) -> str:
    """The SHA-256 (hex) of ``deletion``'s proof: what its key's check is, if it holds."""
    return hashlib.sha256(deletion.proof.encode()).hexdigest()


class Deletion(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A key a device destroyed, with its proof (HMAC-SHA256 with the store key)."""

    id: Annotated[str, Meta(min_length=1, max_length=64)]
    proof: Annotated[str, Meta(min_length=1, max_length=128)]


class KeyBox(Protocol):
    """Where a server keeps the keys of its stores."""

    def put(self, store_id: str, items: list[KeyItem]) -> int:
        """Keep ``items`` (those deleted before stay deleted); how many were new."""
        ...

    def get(self, store_id: str) -> tuple[list[KeyItem], list[Deletion]]:
        """The store's keys, and those deleted."""
        ...

    def delete(self, store_id: str, deleted: list[Deletion]) -> tuple[int, list[str]]:
        """Delete keys (forgetting their bytes, keeping the proofs): how many were
        there, and the ids of those refused, left as they were: their proof is not the
        one their key was put with (:func:`proves`)."""
        ...

    def usage(self, store_id: str) -> tuple[int, int]:
        """How many keys the store has (deleted ones included) and their wrapped bytes."""
        ...

    def known(self, store_id: str, ids: list[str]) -> int:
        """How many of ``ids`` the store keeps already (deleted ones included)."""
        ...


class MemoryKeys:
    """A :class:`KeyBox` in memory (tests, a server without a database)."""

    def __init__(self) -> None:
        self._items: dict[str, dict[str, KeyItem | Deletion]] = {}

    def put(self, store_id: str, items: list[KeyItem]) -> int:
        """See :class:`KeyBox`."""
        kept = self._items.setdefault(store_id, {})
        new = [i for i in items if i.id not in kept]
        kept.update((i.id, i) for i in new)
        return len(new)

    def get(self, store_id: str) -> tuple[list[KeyItem], list[Deletion]]:
        """See :class:`KeyBox`."""
        kept = list(self._items.get(store_id, {}).values())
        # As a database lists them: without the checks, the server's own.
        items = [msgspec.structs.replace(i, check=None) for i in kept if isinstance(i, KeyItem)]
        deleted: list[Deletion] = [i for i in kept if isinstance(i, Deletion)]
        return items, deleted

    def delete(self, store_id: str, deleted: list[Deletion]) -> tuple[int, list[str]]:
        """See :class:`KeyBox`."""
        kept = self._items.setdefault(store_id, {})
        refused = [
            d.id
            for d in deleted
            if isinstance(item := kept.get(d.id), KeyItem) and not proves(d, item.check)
        ]
        taken = [d for d in deleted if d.id not in refused]
        found = sum(1 for d in taken if isinstance(kept.get(d.id), KeyItem))
        kept.update((d.id, d) for d in taken if not isinstance(kept.get(d.id), Deletion))
        return found, refused

    def usage(self, store_id: str) -> tuple[int, int]:
        """See :class:`KeyBox`."""
        kept = self._items.get(store_id, {}).values()
        return len(kept), sum(len(i.blob) for i in kept if isinstance(i, KeyItem))

    def known(self, store_id: str, ids: list[str]) -> int:
        """See :class:`KeyBox`."""
        return len(set(ids) & self._items.get(store_id, {}).keys())


class SqlKeys:
    """A :class:`KeyBox` in the sync server's database."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        ensure_tables(engine)
        self._rewrites = _Rewrites(self._scrub)

    def flush(self) -> None:
        """Rewrite now what deletions left to rewrite, and wait until it is done (a
        server that closes does)."""
        self._rewrites.finish()

    def _insert(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
        """Insert rows, leaving those another request inserted meanwhile."""
        if not rows:
            return
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        conn.execute(dialect.insert(keys).on_conflict_do_nothing(), rows)

    def put(self, store_id: str, items: list[KeyItem]) -> int:
        """See :class:`KeyBox`."""
        now = to_iso(utc_now())
        with transaction(self.engine, "keeping keys", write=True) as conn:
            known = self._known(conn, store_id, [i.id for i in items])
            new = [i for i in items if i.id not in known]
            self._insert(
                conn,
                [
                    {"store_id": store_id, "id": i.id, "kind": i.kind, "scope": i.scope,
                     "blob": i.blob, "proof": None, "created_at": now, "deleted_at": None,
                     "deletion_check": i.check}
                    for i in new
                ],
            )  # fmt: skip
        return len(new)

    def get(self, store_id: str) -> tuple[list[KeyItem], list[Deletion]]:
        """See :class:`KeyBox`."""
        c = keys.c
        query = sa.select(c.id, c.kind, c.scope, c.blob, c.proof).where(c.store_id == store_id)
        with transaction(self.engine, "reading keys") as conn:
            rows = conn.execute(query.order_by(c.created_at, c.id)).all()
        live = [KeyItem(id=r.id, kind=r.kind, scope=r.scope, blob=r.blob) for r in rows if r.blob]
        return live, [Deletion(id=r.id, proof=r.proof) for r in rows if r.blob is None]

    def delete(self, store_id: str, deleted: list[Deletion]) -> tuple[int, list[str]]:
        """See :class:`KeyBox`."""
        now = to_iso(utc_now())
        done = 0
        sqlite_file = self.engine.dialect.name == "sqlite"
        with transaction(self.engine, "deleting keys", write=True) as conn:
            if sqlite_file:  # the pages the wrapped bytes leave are zeroed
                conn.exec_driver_sql("PRAGMA secure_delete=ON")
            c = keys.c
            for gone in deleted:
                # The check is the update's own condition: a key put meanwhile is not
                # deleted unchecked.
                proven = sa.or_(c.deletion_check.is_(None), c.deletion_check == _hash(gone))
                done += conn.execute(
                    sa.update(keys)
                    .where(c.store_id == store_id, c.id == gone.id, c.blob.is_not(None), proven)
                    .values(blob=None, proof=gone.proof, deleted_at=now)
                ).rowcount
            live = sa.select(c.id).where(
                c.store_id == store_id, c.id.in_([d.id for d in deleted]), c.blob.is_not(None)
            )
            refused = sorted({row.id for row in conn.execute(live)})
            known = self._known(conn, store_id, [d.id for d in deleted])
            self._insert(
                conn,
                [  # deleted before they were ever put: remembered as deleted
                    {"store_id": store_id, "id": d.id, "kind": "data", "scope": "",
                     "blob": None, "proof": d.proof, "created_at": now, "deleted_at": now,
                     "deletion_check": None}
                    for d in deleted
                    if d.id not in known
                ],
            )  # fmt: skip
        if done:
            self._rewrites.ask()  # in the background: the request does not wait for it
        return done, refused

    def usage(self, store_id: str) -> tuple[int, int]:
        """See :class:`KeyBox`."""
        c = keys.c
        query = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(sa.func.length(c.blob)), 0))
        with transaction(self.engine, "counting keys") as conn:
            count, size = conn.execute(query.where(c.store_id == store_id)).one()
        return int(count), int(size)

    def known(self, store_id: str, ids: list[str]) -> int:
        """See :class:`KeyBox`."""
        c = keys.c
        query = sa.select(sa.func.count()).where(c.store_id == store_id, c.id.in_(set(ids)))
        with transaction(self.engine, "counting keys") as conn:
            return int(conn.scalar(query) or 0)

    def _scrub(self) -> bool:
        """Leave no older copy of a deleted key's wrapped bytes in the database's files:
        on SQLite its write-ahead log is emptied, on PostgreSQL the table is rewritten
        (``VACUUM FULL``; what PostgreSQL's own write-ahead log and backups keep is out
        of PJai's reach, docs/security.md). False when a reader or a transaction kept
        it from that: it is to run again."""
        if self.engine.dialect.name == "sqlite":
            if empty_sqlite_log(self.engine):
                return True
            log.warning("a reader kept the sync server's log: deleted keys stay in it for now")
            return False
        autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        with autocommit.connect() as conn:
            conn.exec_driver_sql(f"SET lock_timeout = {REWRITE_LOCK_WAIT_MS}")
            try:
                conn.exec_driver_sql(f'VACUUM FULL "{keys.name}"')
            except sa.exc.OperationalError as exc:
                if not isinstance(exc.orig, psycopg.errors.LockNotAvailable):
                    raise
                log.warning("a transaction held the keys table: deleted keys stay in it for now")
                return False
            finally:
                conn.exec_driver_sql("RESET lock_timeout")
        return True

    def _known(self, conn: sa.Connection, store_id: str, ids: list[str]) -> set[str]:
        query = sa.select(keys.c.id).where(keys.c.store_id == store_id, keys.c.id.in_(ids))
        return {row.id for row in conn.execute(query)}


class _Rewrites:
    """Runs ``rewrite`` in a thread of its own when asked, one run at a time: the asks
    made while one runs or waits are served by the next run, which starts
    :data:`REWRITE_GAP_S` after the last one ended at the soonest. A run that fails or
    returns False runs again, unless the rewrites are finishing."""

    def __init__(self, rewrite: Callable[[], bool]) -> None:
        self._rewrite = rewrite
        self._changed = threading.Condition()
        self._owed = False
        self._hurry = False
        self._running: threading.Thread | None = None
        self._next_at = 0.0

    def ask(self) -> None:
        with self._changed:
            self._owed = True
            if self._running is None:
                self._running = threading.Thread(
                    target=self._run, name="pjai-keys-rewrite", daemon=True
                )
                self._running.start()

    def finish(self) -> None:
        """Run an owed rewrite now, without waiting for its time, and wait for it."""
        with self._changed:
            self._hurry = True
            self._changed.notify_all()
            while self._running is not None:
                self._changed.wait()
            self._hurry = False

    def _run(self) -> None:
        while True:
            with self._changed:
                while self._owed and not self._hurry:
                    wait = self._next_at - time.monotonic()
                    if wait <= 0:
                        break
                    self._changed.wait(wait)
                if not self._owed:
                    self._running = None
                    self._changed.notify_all()
                    return
                self._owed = False
            started = time.monotonic()
            try:
                done = self._rewrite()
            except Exception:
                log.exception("rewriting the keys failed; deleted ones stay in the files for now")
                done = False
            if not done:
                with self._changed:
                    self._owed = self._owed or not self._hurry  # later, unless closing
            ended = time.monotonic()
            self._next_at = ended + max(REWRITE_GAP_S, 9 * (ended - started))
