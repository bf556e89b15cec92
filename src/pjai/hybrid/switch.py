"""The store switch: follows the ``use_livestore`` flag and moves live queries along.

With the flag on, the reactive store is open and the projector projects its commits
into SQL; reads and live queries run on the store. Switching it off first lets SQL
take every event the store has, then closes the store; reads and live queries move to
the SQL primary (a single one: ad-hoc SQL over several shards is not possible, so live
queries are parked there, keeping their last result and subscribers, until the store
is back). Switching it on opens the store, lets it take the events SQL journalled
meanwhile, and moves the live queries back. A synced store never switches off.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path

from pjai.errors import (
    ConfigError,
    SqlError,
    SqlUnavailableError,
    StoreCorruptError,
    StoreModeError,
)
from pjai.hybrid.flags import Flags, env_name
from pjai.hybrid.identity import Identity
from pjai.hybrid.projector import Projector
from pjai.hybrid.quarantine import QuarantineReport, unreviewed
from pjai.hybrid.recovery import StoreRebuilt, finish_rebuild, rebuild_store_file
from pjai.hybrid.sqllive import SqlLiveHost, SqlQuery, tables_of
from pjai.schema.event import Event, Schema
from pjai.schema.records import EventRecord
from pjai.schema.types import Progress
from pjai.sql import journal
from pjai.store import LiveQuery, Row, Store
from pjai.store.filehead import FileHead
from pjai.store.query import Params, Query, prepare

__all__ = ["StoreSwitch"]

log = logging.getLogger(__name__)

_SEALED_NEEDS_STORE = (
    "the SQL primary keeps the sensitive columns sealed (PJAI_SQL_SEALED), so it cannot "
    "search or show memories on its own: the reactive store stays on (set PJAI_SQL_SEALED="
    "false and `pjai repair --side sql` to keep SQL in plaintext)"
)


class StoreSwitch:
    """Opens and closes the store as the flags say (see the module doc).

    ``lock`` is the manager's: every method runs under it.
    """

    def __init__(
        self,
        store_path: Path,
        *,
        schema: Schema,
        flags: Flags,
        identity: Identity,
        projector: Projector,
        lock: threading.RLock,
        rebuild_damaged: bool,
    ) -> None:
        self.store_path = store_path
        self.rebuilt: StoreRebuilt | None = None
        """Set when the store file could not be opened and was rebuilt as it opened."""
        self._schema = schema
        self._flags = flags
        self._identity = identity
        self._projector = projector
        self._lock = lock
        self._rebuild_damaged = rebuild_damaged
        shards = projector.shards
        self._sealed = shards.sealer is not None
        self._sql_live = SqlLiveHost(shards, frozenset(schema.tables()))
        self._store_file_head = FileHead(store_path)
        """Read before each commit with the store off (see :meth:`Projector.append`)."""
        self._live: weakref.WeakKeyDictionary[LiveQuery, tuple[Query, Params]] = (
            weakref.WeakKeyDictionary()
        )
        self._unfollowed = False
        """A switch the flags asked for failed for want of SQL: :meth:`follow` tries again."""
        self._held_on = False
        """The flags say off, and turning the store off was refused over quarantined
        events waiting for review: :meth:`retry_held_on` tries again."""

    @property
    def store(self) -> Store | None:
        """The open store, or ``None`` while it is off."""
        return self._projector.store

    @property
    def syncing(self) -> bool:
        """Whether the store syncs (then it never switches off)."""
        return self._projector.syncing

    def open(self, progress: Progress | None) -> None:
        """As the manager opens: open the store, or, with it off, let SQL take what a
        store file left from an earlier run holds."""
        if self._flags["use_livestore"]:
            self.start(progress)
        elif self.syncing:
            raise ConfigError(
                "the sync flag needs the reactive store: syncing works on its event "
                "log, so a directory that syncs keeps use_livestore on"
            )
        elif self._sealed:
            raise ConfigError(_SEALED_NEEDS_STORE)
        else:
            self.stop(progress)

    def follow(self, progress: Progress | None = None, *, force: bool = False) -> None:
        """Open or close the store if the flag changed since last time (or ``force``),
        or a switch it asked for could not reach SQL then."""
        with self._lock:
            if not (self._flags.refresh() or force or self._unfollowed):
                return
            self._unfollowed = self._held_on = False
            wanted = self._flags["use_livestore"]
            try:
                if wanted and self.store is None:
                    self.start(progress)
                    self._move_live_queries()
                elif not wanted and self.store is not None:
                    self.stop(progress)
            except SqlError:
                # The flag still says so: switch once SQL answers, not only when the
                # flags file changes again.
                self._unfollowed = True
                raise

    def retry_held_on(self, progress: Progress | None = None) -> None:
        """Turn the store off, as the flags still say, if that was refused over
        quarantined events that no longer wait for review (acknowledged or applied
        again since, by this process or another); while they wait, the store stays on
        and nothing is raised: the refusal was told when the flag was followed. For a
        long-running process's periodic look (:meth:`HybridDatabaseManager.refresh`):
        it reads the quarantine, which no ordinary call should."""
        with self._lock:
            store = self.store
            if store is None or self._flags["use_livestore"]:
                self._held_on = False  # off, or the flag set back on (a refused set_flag)
            if not self._held_on or store is None:
                return
            try:
                waiting = unreviewed(store, self._projector.shards)
            except SqlError as exc:  # the next look tries again
                log.warning("cannot tell whether quarantined events still wait: %s", exc)
                return
            if not waiting.alarm:
                self.follow(progress, force=True)

    def set_flag(self, name: str, value: bool) -> None:
        """Set a flag now and for later runs, and follow it; set back if that fails."""
        with self._lock:
            previous = self._flags[name]
            state = self._flags.set(name, value)
            if state.source == "environment" and state.value != value:
                self._flags.set(name, previous)
                raise ConfigError(
                    f"flag {name} is set to {state.value} by the environment, which wins "
                    "over the flags file; change the environment variable instead"
                )
            try:
                self.follow(force=True)
            except BaseException:
                self._flags.set(name, previous)  # the switch did not happen
                raise

    def start(self, progress: Progress | None) -> Store:
        """Open the store and attach it to the projector. A store file made now in a
        directory used before (with the store off, or its file removed) has not seen
        SQL's history: it takes no commit while SQL is away, until it has."""
        # Used before: by another process (the identity was there), or by this one with
        # the store off (SQL's head as it last knew it).
        used = not self._identity.new or self._projector.sql_head > 0
        unseen = not self.store_path.exists() and used
        store = self._open(progress)
        self._identity.adopt(store.client_id)
        self._projector.attach(store, unseen=unseen and not self.syncing)
        return store

    def stop(self, progress: Progress | None) -> None:
        """Turn the store off: SQL must first hold every event the store has, and no
        quarantined event may wait for review (:meth:`_refuse_over_quarantine`)."""
        if self.syncing:
            raise ConfigError(
                "this data directory syncs, which needs the reactive store; turn the sync "
                "flag off (and reopen) before switching the store off"
            )
        if self._sealed:
            raise ConfigError(_SEALED_NEEDS_STORE)
        running = self.store
        store = running
        if store is None and self.store_path.exists():
            store = self._open(progress)
        if store is not None:
            self._projector.store = store
            try:
                self._projector.reconcile(progress)
                waiting = unreviewed(store, self._projector.shards)
            except SqlError as exc:
                if running is None:
                    self._projector.store = None
                    store.close()
                raise SqlUnavailableError(
                    "cannot switch the reactive store off yet: SQL must first hold every "
                    f"event the store has, and it cannot be reached to make sure ({exc}); "
                    "the store goes off at the next command once SQL answers"
                ) from exc
            if waiting.alarm:
                if running is None:
                    self._projector.store = None
                    store.close()
                self._refuse_over_quarantine(waiting, opening=running is None)
        self._projector.detach()
        self._move_live_queries()
        if store is not None:
            store.close()

    def compact(self) -> bool | None:
        """Rewrite the store file without the pages its deleted rows left: the open
        store's, or, with the store off, its file's, after it took in SQL's journal (an
        erasure committed meanwhile deletes the rows). Whether the file was rewritten
        (``False``: a reader still holds an older state); ``None``: there is no file."""
        with self._lock:
            if self.store is not None:
                return self.store.compact()
            if not self.store_path.exists():
                return None
            store = self._open(None)
            self._projector.store = store
            try:
                self._projector.reconcile(None)
                return store.compact()
            finally:
                self._projector.store = None
                store.close()

    def replace_damaged(self, problems: list[str], progress: Progress | None) -> StoreRebuilt:
        """Close the store, rebuild its damaged file in a new one and open that."""
        store = self.store
        if store is not None:
            self._projector.store = None
            store.close()
        rebuilt = self._rebuild_file(problems, progress)
        self.start(progress)
        return rebuilt

    # -- reads ----------------------------------------------------------------------

    def query(self, query: Query, params: Params = None) -> list[Row]:
        """Read from the store, or from SQL with it off (where the rows are)."""
        store = self.store
        if store is not None:
            return store.query(query, params)
        return self._sql_live.query(query, params)

    def live(self, query: Query, params: Params = None) -> LiveQuery:
        """A live query on the store, or on SQL with it off; it follows the switch."""
        store = self.store
        live = (
            store.live(query, params) if store is not None else self._sql_live.live(query, params)
        )
        self._live[live] = (query, params)
        return live

    # -- writes ---------------------------------------------------------------------

    def commit(self, events: Sequence[Event]) -> list[EventRecord]:
        """Commit to the store and SQL, or to SQL alone with the store off (live queries
        on SQL then re-run). The caller holds the lock and followed the flags."""
        store = self.store
        if store is not None:
            return self._projector.commit(store, events)
        if not events:
            return []
        records, tables = self._projector.append(events, self._store_file_head)
        self._sql_live.changed(tables)
        return records

    def refresh_sql(self) -> bool:
        """With the store off: take in other processes' commits to SQL (its journal
        moved on), re-running live queries on SQL; whether there were any. The caller
        holds the lock."""
        head = self._projector.journal_head()
        if head == self._projector.sql_head:
            return False
        self._projector.sql_head = head
        self._sql_live.changed({*self._schema.tables(), journal.journal.name})
        return True

    def synced_store(self, data_dir: Path) -> Store:
        """The store, which must be a synced one, for a sync client."""
        store = self.store
        if not self.syncing or store is None:
            raise ConfigError(
                f"{data_dir} does not sync: a data directory syncs when the sync "
                "flag is on as it is first opened (`pjai sync connect` on a new directory "
                "does that). To sync what this one holds: `pjai export FILE`, then "
                "`pjai import FILE --data-dir NEW --sync`, and connect NEW"
            )
        return store

    def close(self) -> None:
        """Close the store and stop every live query on SQL."""
        self._sql_live.close()
        self._store_file_head.close()
        store = self.store
        if store is not None:
            self._projector.store = None
            store.close()

    # -- internals ------------------------------------------------------------------

    def _refuse_over_quarantine(self, waiting: QuarantineReport, *, opening: bool) -> None:
        """Refuse to turn the store off while quarantined events wait for review: with
        it off, SQL is all that is read and what commits build on, so an event SQL
        refused would be gone from sight (and one the store refused, from the alarm).
        ``opening``: the flags said off as the directory was opened.

        A running process refused so goes on with the store on, and its periodic look
        tries the switch again (:meth:`retry_held_on`): the events may be acknowledged
        or applied again, here or by another process, while the flag still says off."""
        self._held_on = not opening
        counts = ", ".join(
            f"{count} refused by {side}"
            for count, side in ((waiting.sql, "SQL"), (waiting.store, "the store"))
            if count
        )
        sides = {"sql": "SQL", "store": "the store"}
        listed = "; ".join(
            f"{q.name} {q.event_id} at e{q.position} (refused by "
            f"{' and '.join(sides[side] for side in q.sides)}: {q.reason})"
            for q in waiting.events[:5]
        )
        more = " and more" if len(waiting.events) > 5 else ""  # it lists up to 20
        variable = env_name("use_livestore")
        then = "; then switch the store off"
        if self._flags.state("use_livestore").source == "environment":
            then = (
                f". {variable}=false in the environment keeps the store off for those "
                f"commands too: run them with {variable} unset"
            )
        elif opening:
            then = (
                ". If the flags file says use_livestore false (`pjai flags` shows it), those "
                "commands are refused too: `pjai flags set use_livestore true` first"
            )
        raise ConfigError(
            f"cannot switch the reactive store off: quarantined events wait for review "
            f"({counts}), and with the store off SQL is all that is read: {listed}{more} "
            "(`pjai doctor` lists them). Once their cause is fixed, `pjai repair --side sql` "
            "applies again those SQL refused (`--side store`: those the store refused); or, "
            f"once reviewed, `pjai repair --ack-quarantine` accepts them as they are{then}"
        )

    def _move_live_queries(self) -> None:
        store = self.store
        for live, (query, params) in list(self._live.items()):
            if store is not None:
                live.move(store, prepare(query, params, live=True))
            else:
                live.move(self._sql_live, SqlQuery(query, params, tables_of(query)))

    def _open(self, progress: Progress | None) -> Store:
        if finish_rebuild(self.store_path):
            log.warning("finished putting the rebuilt store file %s in place", self.store_path)
        try:
            return Store.open(
                self.store_path, schema=self._schema, sync=self.syncing, progress=progress
            )
        except StoreCorruptError as exc:
            if not self._rebuild_damaged:
                raise
            self.rebuilt = self._rebuild_file([str(exc)], progress)
            return Store.open(
                self.store_path, schema=self._schema, sync=self.syncing, progress=progress
            )
        except StoreModeError as exc:
            flag = self._flags.state("sync")
            said, undo = "", "set the flag back"
            if flag.source == "environment":
                said = f" ({env_name('sync')} in the environment)"
                undo = f"unset {env_name('sync')}"
            raise ConfigError(
                f"the sync flag is {'on' if self.syncing else 'off'}{said} but "
                f"{self.store_path} was made {'standalone' if self.syncing else 'to sync'}; a "
                f"store's mode is fixed when it is made: {undo}, or export this directory and "
                "import it into a new one"
            ) from exc

    def _rebuild_file(self, problems: list[str], progress: Progress | None) -> StoreRebuilt:
        rebuilt = rebuild_store_file(
            self.store_path,
            shards=self._projector.shards,
            schema=self._schema,
            sync=self.syncing,
            client_id=self._identity.client_id,
            problems=problems,
            progress=progress,
        )
        log.warning(
            "rebuilt the damaged store file from %s; the damaged file is kept as %s",
            "its event log" if rebuilt.source == "log" else "SQL's journal",
            rebuilt.damaged_copy,
        )
        return rebuilt
