"""Tending a data directory while it syncs: its keys exchanged with the sync server now
and then and soon after an erasure (:class:`KeysIn`: keys made here go out, others'
come in, the keys of personas erased elsewhere go and the files are compacted), and
what erased personas left beside the store dropped (:class:`Tending`, run by
:func:`tend` beside the sync client)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial

import apsw
from sqlalchemy import select

from pjai.app.datadir import DataDir
from pjai.app.erasedkeys import destroy_replaced_keys
from pjai.app.eventlog import event_log, pending_erasures
from pjai.app.forgetting import ForgetGone
from pjai.app.keysync import KeysBusy, sync_keys
from pjai.app.privacy import finish_rewrites, rewrites_due
from pjai.errors import PjaiError
from pjai.hybrid import HybridDatabaseManager
from pjai.schema import EventRecord, PersonaErased
from pjai.schema.sealed import sealed_with
from pjai.schema.tables import personas
from pjai.security import KeyRing
from pjai.sync.clientside import held_for

__all__ = ["HOLD_AT_MOST_S", "KEYS_EVERY_S", "KEYS_SOON_S", "KeysIn", "Tending", "tend"]

log = logging.getLogger(__name__)


class KeysIn:
    """Key exchanges while a directory syncs (:func:`sync_keys`): keys made here go
    out, others' come in. A key made here goes to the server before any event sealed
    with it (:meth:`cleared`, the sync client's ``before_push``): whoever reads the
    server's log learns a key's id only once the server holds the key and the check of
    its deletion, so no one can delete it there, or put another of its id, first.

    Events that arrived before their key were refused: once it is here they apply (the
    store and SQL are rebuilt from the log). A persona erased on another device: its
    keys are destroyed at once, and its rows, once its erasure event is here, leave no
    page behind (the files are compacted), whether the event or the key's deletion
    came first. An erasure made here that waited for the server is finished the same
    way once the server confirms it.

    When to compact is decided from what this process saw; what is owed lasts in the
    data directory (:mod:`pjai.app.erasing`): a persona is marked before the exchange
    destroys its keys, and the mark goes once the files are rewritten without its rows
    (:func:`~pjai.app.privacy.finish_rewrites`), so that a process stopped in between
    leaves it to the next opening of the directory. (An erasure event that came before
    its keys' deletion needs no mark: the keys still held tell it.)"""

    def __init__(
        self,
        data_dir: DataDir,
        manager: HybridDatabaseManager,
        ring: KeyRing,
        url: str,
        token: str,
        store_id: str,
    ) -> None:
        self._data_dir, self._manager, self._ring = data_dir, manager, ring
        self._url, self._token, self._store_id = url, token, store_id
        self._erased: set[str] = set()
        """Personas erased elsewhere whose rows may still be in freed pages here."""
        owed = pending_erasures(manager) or rewrites_due(data_dir, manager)
        self._compacted: set[str] | None = None if owed else self._erased_keys()
        """The erased keys as of the last compaction (none yet: an erasure owed one as
        this began, waiting for the server, or marked by a process that stopped or
        could not rewrite a file then): a key erased since (here, while connected or
        not, or by another device) calls for another."""
        self._live = self._personas()
        """The personas held as of the last compaction: one gone since (its erasure
        event came, maybe before its key's deletion) calls for another."""
        self._erasures = self._erasure_events()
        """The erasure events of the log as of the last compaction: one come since calls
        for another, also when its persona's id is held again (a persona given it anew,
        whose creation came with the erasure)."""
        self._exchanged = self._erased_keys(), set(self._live), set(self._erasures)
        """The erased keys, the personas held and the erasure events of the log as of the
        last exchange (:meth:`due`)."""
        self.held_until = 0.0
        """Until when (``time.monotonic()``) the server asked to be left alone, when it
        last refused an exchange as too soon (:class:`~pjai.app.keysync.KeysBusy`; at
        most :data:`~pjai.sync.clientside.MAX_HOLD_S` from then)."""
        self._on_server: frozenset[str] = frozenset()
        """The keys the server holds or lists as deleted, as the last exchange told
        (:func:`sync_keys`' ``learnt``)."""
        self._exchanging = threading.Lock()
        self._sharing: asyncio.Task[None] | None = None
        self._share_at, self._share_wait = 0.0, _SHARE_RETRY_S[0]
        """When :meth:`cleared` may next start an exchange, and how long it waits after
        the next failed one."""
        self._held_since: dict[str, float] = {}
        """When an event sealed with each key not yet shared was first held back."""
        self._given_up: set[str] = set()
        """Keys not shared within :data:`HOLD_AT_MOST_S`: their events went without them."""
        self._failed_at = 0.0
        """When an exchange last failed (``time.monotonic()``)."""
        self._checked: set[str] = set()
        """The keys whose copy on the server was checked to open with the store key (one
        that does not is said once a process)."""

    def __call__(self) -> None:
        with self._exchanging:  # the regular turns and :meth:`cleared`'s
            self._exchange()

    def wait(self) -> None:
        """Return once no exchange runs (one under way in a thread ends first)."""
        with self._exchanging:
            pass

    def _exchange(self) -> None:
        keys, live, erasures = self._erased_keys(), self._personas(), self._erasure_events()
        self._exchanged = keys, live, erasures  # before the exchange: one meanwhile is due
        try:
            shared = sync_keys(
                self._ring,
                self._url,
                token=self._token,
                store_id=self._store_id,
                directory=self._data_dir.path,
                learnt=self._learn,
                checked=self._checked,
            )
        except PjaiError as exc:
            self._failed_at = time.monotonic()
            if isinstance(exc, KeysBusy) and (wait := held_for(exc.retry_after)):
                self.held_until = time.monotonic() + wait
            raise
        if shared.erased_here:  # destroyed by this exchange: nothing more to tell
            came = {k.key_id for k in self._ring.erased() if k.scope in shared.erased_here}
            self._exchanged = keys | came, live, erasures
        store = self._manager.store
        assert store is not None
        if shared.came and store.count_quarantined():
            self._manager.repair("store")
            self._manager.repair("sql")
        self._erased.update(shared.erased_here)
        self.compact_erased()

    def _learn(self, on_server: frozenset[str]) -> None:
        self._on_server = on_server

    async def cleared(self, records: Sequence[EventRecord]) -> int:
        """How many of ``records``, about to be pushed in this order, may go: those
        before the first sealed with a key the server did not hold at the last exchange,
        held here or erased here (whose deletion, kept on the server, keeps anyone from
        putting a key of its id there later). When one is held back, an exchange is
        started in the background (one at a time, after a failed one a while later,
        never while a busy server asked to be left alone).

        A key not on the server :data:`HOLD_AT_MOST_S` after its first event was held
        back, and whose sharing failed again after that, holds nothing back any more
        (said in the log): a keys channel that fails (a server down, or one whose keys
        a token holder filled) delays a device's events, and never stops them. (Time
        offline alone gives nothing up: the channel is tried again first.)"""
        try:
            waiting: set[str] | None = await asyncio.to_thread(self._unshared)
        except (PjaiError, OSError, apsw.Error) as exc:  # not known: every key waits
            log.warning("looking for keys not yet on the sync server: %s", exc)
            waiting = None
        if waiting is not None:
            for gone in (self._held_since.keys() | self._given_up) - waiting:
                self._held_since.pop(gone, None)
                self._given_up.discard(gone)
        now = time.monotonic()
        for count, record in enumerate(records):
            if waiting is not None and not waiting:
                break
            key = sealed_with(bytes(record.args))
            if key is None or key in self._given_up or (waiting is not None and key not in waiting):
                continue
            since = self._held_since.setdefault(key, now)
            if now - since < HOLD_AT_MOST_S or self._failed_at < since + HOLD_AT_MOST_S:
                self._share_soon()
                return count
            self._given_up.add(key)
            log.warning(
                "the key %s is not on the sync server %g s after its first event was held "
                "back: its events go without it (a device that lacks it reads them once "
                "it is shared)",
                key,
                HOLD_AT_MOST_S,
            )
        return len(records)

    def _unshared(self) -> set[str]:
        erased = {k.key_id for k in self._ring.erased()}
        return (self._ring.key_ids() | erased) - self._on_server

    def _share_soon(self) -> None:
        now = time.monotonic()
        if self._sharing is not None or now < max(self._share_at, self.held_until):
            return
        self._sharing = asyncio.create_task(asyncio.to_thread(self._share))
        self._sharing.add_done_callback(self._shared)

    def _share(self) -> None:
        with self._exchanging:
            if not self._unshared():  # a regular turn shared them meanwhile
                return
            self._exchange()

    def _shared(self, task: asyncio.Task[None]) -> None:
        self._sharing = None
        failed = None if task.cancelled() else task.exception()
        if failed is None:
            self._share_at, self._share_wait = 0.0, _SHARE_RETRY_S[0]
            return
        self._share_at = time.monotonic() + self._share_wait
        self._share_wait = min(self._share_wait * 2, _SHARE_RETRY_S[1])
        if isinstance(failed, PjaiError):  # the next try, or the regular turn, may do
            log.warning("sharing new keys with the sync server: %s", failed)
        else:
            log.error("sharing new keys with the sync server failed", exc_info=failed)

    def due(self) -> bool:
        """Whether an erasure calls for an exchange before the next regular one: a key
        erased since the last exchange (here, by any process: the ring reads its file
        anew), a persona held then gone (its erasure event came from another device,
        whose key's deletion other devices should have soon), or an erasure event come
        while its persona's id is held again (a persona given it anew: the erased one's
        keys held here go at the exchange)."""
        keys, live, erasures = self._exchanged
        return (
            self._erased_keys() != keys
            or not live <= self._personas()
            or not self._erasure_events() <= erasures
        )

    def _erased_keys(self) -> set[str]:
        return {k.key_id for k in self._ring.erased()}

    def _personas(self) -> set[str]:
        return {row.id for row in self._manager.query(select(personas.c.id))}

    def _erasure_events(self) -> set[str]:
        store = self._manager.store
        assert store is not None
        erasures = store.events(named=(PersonaErased.NAME,))
        return {record.id for record in store.schema.proven(e.record for e in erasures)}

    def compact_erased(self) -> None:
        """Compact the store and SQL when a key was erased since the last compaction, or
        the erasure event of a persona erased elsewhere has arrived; never while an
        erasure made here waits for the server (its event keeps the deleted rows until
        it is confirmed). Once compacted, the erasures that owed it are finished
        (:func:`~pjai.app.privacy.finish_rewrites`). First, the keys an erased persona
        left beside a persona given her id again are destroyed, as her erasure event is
        here (:func:`~pjai.app.erasedkeys.destroy_replaced_keys`)."""
        destroy_replaced_keys(self._ring, partial(event_log, self._manager), self._manager.query)
        if pending_erasures(self._manager):
            return
        keys = self._erased_keys()
        still = set()
        if self._erased:
            rows = self._manager.query(select(personas.c.id).where(personas.c.id.in_(self._erased)))
            still = {row.id for row in rows}
        live, erasures = self._personas(), self._erasure_events()
        if (
            keys == self._compacted
            and still == self._erased
            and self._live <= live
            and erasures <= self._erasures
        ):
            self._live = live  # personas made since: nothing to compact
            return
        # Before the compaction: one marked during it may have rows it did not cover.
        owed = rewrites_due(self._data_dir, self._manager)
        store = self._manager.store
        assert store is not None
        before = store.head, store.confirmed_head  # as of the check above
        emptied = store.compact()
        done = self._manager.shards.compact()
        # Another process reading an older state holds the old pages, or committed (an
        # erasure, whose pending event keeps the rows it deleted) or was confirmed
        # meanwhile: not done, the next exchange tries again.
        waiting = pending_erasures(self._manager)  # reads the file anew: head too
        settled = not waiting and (store.head, store.confirmed_head) == before
        if emptied and len(done) == len(self._manager.shards) and settled:
            self._compacted, self._erased, self._live = keys, still, live
            self._erasures = erasures
            try:
                finish_rewrites(self._data_dir, self._manager, owed)
            except (PjaiError, OSError, apsw.Error) as exc:  # the marks stay for the next open
                log.warning("finishing the erasures of %s: %s", ", ".join(owed), exc)


class Tending:
    """What a syncing directory does now and then (:func:`tend`): its
    keys exchanged (an encrypted one, :class:`KeysIn`), then what erased personas left
    beside the store dropped (:class:`~pjai.app.forgetting.ForgetGone`)."""

    def __init__(self, keys_in: KeysIn | None, gone: ForgetGone) -> None:
        self.keys_in, self._gone = keys_in, gone

    def __call__(self) -> None:
        try:
            if self.keys_in is not None:
                self.keys_in()
        finally:  # what is dropped here needs no server
            self.drop_gone()

    def due(self) -> bool:
        """Whether an erasure calls for tending before the next regular turn
        (:meth:`KeysIn.due`)."""
        return self.keys_in is not None and self.keys_in.due()

    @property
    def held_until(self) -> float:
        """Until when a busy server asked not to be asked again (:attr:`KeysIn.held_until`)."""
        return 0.0 if self.keys_in is None else self.keys_in.held_until

    def drop_gone(self) -> None:
        """Drop what erased personas left beside the store, without exchanging keys."""
        try:
            self._gone()
        except (PjaiError, OSError, apsw.Error) as exc:  # the next turn tries again
            log.warning("dropping what erased personas left beside the store: %s", exc)


KEYS_EVERY_S = 10.0
"""How often a running client of an encrypted directory exchanges keys with the server."""


KEYS_SOON_S = 1.0
"""How often a running client of an encrypted directory looks (in its files, not at the
server) whether an erasure calls for a key exchange before the next regular one."""


HOLD_AT_MOST_S = 30.0
"""How long :meth:`KeysIn.cleared` holds back the events sealed with a key not yet on the
sync server before it gives the key up, at the next failure to share it."""


_SHARE_RETRY_S = (1.0, KEYS_EVERY_S)
"""After a failed exchange :meth:`KeysIn.cleared` started, how long until it may start
another: the first wait, doubling after each failure up to the second."""


_FOLLOW_UPS_S = (2.0, 4.0)
"""After an exchange an erasure called for, further ones this many seconds later: the
other device's side of it (its key's deletion) may reach the server a little later."""


async def tend(tending: Tending) -> None:
    """Tend a syncing directory (:class:`Tending`, in a thread) until cancelled: every
    :data:`KEYS_EVERY_S`, and soon after an erasure (:meth:`Tending.due`, looked at every
    :data:`KEYS_SOON_S`), then a few times more, backing off. A failed turn is said in
    the log and the next one tries again. While a busy server asked to be left alone
    (:attr:`Tending.held_until`, also after the exchange a sync makes as it starts),
    no turn comes; the one it refused comes when the wait is over, and the turns that
    were to follow it as much later."""
    now = time.monotonic()
    regular = now + KEYS_EVERY_S
    follow_ups = _held_over([], tending.held_until, now) if tending.held_until > now else []
    while True:
        held_until = tending.held_until
        next_at = max(min([regular, *follow_ups]), held_until)
        await asyncio.sleep(max(0.0, min(next_at - time.monotonic(), KEYS_SOON_S)))
        now = time.monotonic()
        if now >= next_at:
            follow_ups = [at for at in follow_ups if at > now]
        elif await _looked(tending.due, "looking for erasures", quiet=True):
            if now < held_until:  # the erasure's turns, once the wait is over
                follow_ups = [held_until + after for after in (0.0, *_FOLLOW_UPS_S)]
                continue
            follow_ups = [now + after for after in _FOLLOW_UPS_S]
        else:
            continue
        await _looked(tending, "exchanging keys with the sync server")
        regular = time.monotonic() + KEYS_EVERY_S
        if tending.held_until > held_until:  # this turn was refused as too soon
            follow_ups = _held_over(follow_ups, tending.held_until, now)


def _held_over(follow_ups: list[float], held_until: float, now: float) -> list[float]:
    """The turns to come after the turn due at ``now`` was refused by a busy server that
    asked to be left alone until ``held_until``: that turn again as the wait ends (not
    sooner than :data:`KEYS_SOON_S` after it), then ``follow_ups``, each as much later."""
    again = max(held_until, now + KEYS_SOON_S)
    return [again, *(at + again - now for at in follow_ups)]


async def _looked(call: Callable[[], object], doing: str, *, quiet: bool = False) -> object:
    """``call()`` in a thread; a failure is said in the log (``doing``; at debug level
    when ``quiet``: the regular turn reads the same files and says it) and gives None."""
    try:
        return await asyncio.to_thread(call)
    except PjaiError as exc:  # the next turn tries again; the sync goes on
        log.log(logging.DEBUG if quiet else logging.WARNING, "%s: %s", doing, exc)
    except Exception:  # a bug: said, and the sync goes on
        log.log(logging.DEBUG if quiet else logging.ERROR, "%s failed", doing, exc_info=True)
    return None
