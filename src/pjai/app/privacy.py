"""The right to erasure (GDPR art. 17, CCPA deletion) on an append-only log.

:func:`erase_persona` commits one ``v1.PersonaErased`` event (it names the persona and
nothing else), which deletes every row of the persona from the store's state and the
SQL primary; destroys the persona's data keys, so that its sealed events in every log
open nowhere (crypto-shredding: the lineages of the keys its events were sealed with,
:class:`~pjai.security.KeyRing`, never the keys of a persona given its id again by a
device that had not heard of the erasure, whose creation started a lineage of its
own); drops its memory vectors; and rewrites the store, the SQL primary and the vector
file so that no deleted page keeps its text. It returns an :class:`ErasureProof` that
holds no personal data. From before the event is committed until every file is
rewritten, the data directory holds a mark that the rewrite is owed
(:mod:`pjai.app.erasing`): an erasure stopped on the way is finished by the next
opening of the directory (:func:`finish_erasures`).

What key destruction cannot reach is said, not hidden: events the log holds in
plaintext (written before ``pjai security init``, or in a directory that is not
encrypted) stay readable there; the proof counts them.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

import apsw
from sqlalchemy import select

from pjai.app.datadir import DataDir
from pjai.app.erasedkeys import destroy_replaced_keys, erased_lineages, unfinished_erasures
from pjai.app.erasing import (
    Owed,
    copies_left,
    only_copies_left,
    owe_rewrite,
    rewrite_done,
    rewrites_owed,
    take_back,
)
from pjai.app.eventlog import content_events, event_log, pending_erasures, persona_of
from pjai.app.forgetting import rewrite_beside
from pjai.app.rights import persona_rows
from pjai.errors import NotFoundError, PjaiError
from pjai.hybrid import HybridDatabaseManager
from pjai.schema import PersonaErased
from pjai.schema.expressions import in_parts
from pjai.schema.personas import ERASED_TABLES
from pjai.schema.tables import personas
from pjai.security import FieldCodec

__all__ = [
    "ErasureProof",
    "erase_persona",
    "finish_erasures",
    "finish_rewrites",
    "rewrites_due",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ErasureProof:
    """What an erasure did, with no personal data: which persona (by id), the event
    that records it, when, on which device, the rows deleted per table, the
    fingerprints of the data keys destroyed, the persona's events the log keeps
    (sealed, and now unreadable; or in plaintext, still readable), and the files
    rewritten."""

    persona_id: str
    event_id: str | None
    """The ``v1.PersonaErased`` event (``None`` when finishing an erasure made before)."""
    erased_at: datetime
    device: str
    """This installation's client id."""
    rows: dict[str, int]
    keys_destroyed: list[str]
    sealed_events: int
    plaintext_events: int
    vectors: int
    rewritten: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)
    """What is not rewritten yet, and why; erasing the persona again (by its id) once
    that has passed finishes it, as the next opening of the directory does."""


def erase_persona(
    data_dir: DataDir, manager: HybridDatabaseManager, persona_id: str
) -> ErasureProof:
    """Erase ``persona_id`` for good (see the module). A persona that is gone already
    but whose erasure did not finish (its keys or files) is finished;
    :class:`~pjai.errors.NotFoundError` for one that never was here (nor had its keys
    erased here)."""
    events = event_log(manager)
    exists = bool(manager.query(select(personas.c.id).where(personas.c.id == persona_id)))
    erased_before = any(
        r.name == PersonaErased.NAME and persona_of(r) == persona_id for r in events
    )
    # Marked with no erasure event here: its keys went in a key exchange (erased on
    # another device) before its events came, if they ever come.
    owed = persona_id in rewrites_owed(data_dir.path)
    if not exists and not erased_before and not owed:
        raise NotFoundError(
            f"no persona {persona_id!r} to erase (an erasure that stopped before it "
            "finished is finished by the persona's id: `pjai privacy report` lists it)"
        )
    rows = _rows(manager, persona_id) if exists else {}
    sealed, plain = content_events(events, persona_id)
    # Marked before the event: once it is committed the files hold the rows' text in
    # freed pages, and nothing else tells so (no key is held in a directory without a
    # key ring, nor once the keys are gone). A mark of its own even when one is there:
    # an erasure in another process whose event fails as this one commits takes back
    # only the mark it made. Owed already: a try before may have stopped after deleting
    # the vectors, before rewriting their file.
    mark = owe_rewrite(data_dir.path, persona_id, own=exists)
    again = mark.before
    event_id = None
    if exists:
        try:
            (record,) = manager.commit(PersonaErased(persona_id=persona_id))
        except BaseException:
            _take_back_if_held(manager, mark, persona_id)
            raise
        event_id = record.id
        events = [*events, record]
    codec = manager.schema.codec
    destroyed = []
    if isinstance(codec, FieldCodec):
        # Of its keys, the lineages its events were sealed with: not one a persona given
        # its id again on a device that had not heard of the erasure started.
        lineages = erased_lineages(events, codec.keys).get(persona_id, set())
        destroyed = codec.keys.erase(persona_id, lineages)
    rewritten, unfinished = _rewrite(data_dir, manager, persona_id)
    vectors, beside, not_beside = rewrite_beside(data_dir, events, persona_id, again=again)
    rewritten += beside
    unfinished += not_beside
    copies = _copies(data_dir)
    _settle_mark(data_dir, persona_id, unfinished, copies)
    unfinished += copies
    return ErasureProof(
        persona_id=persona_id,
        event_id=event_id,
        erased_at=datetime.now(UTC),
        device=manager.identity.client_id,
        rows=rows,
        keys_destroyed=[k.fingerprint for k in destroyed],
        sealed_events=sealed,
        plaintext_events=plain,
        vectors=vectors,
        rewritten=rewritten,
        unfinished=unfinished,
    )


def finish_erasures(data_dir: DataDir, manager: HybridDatabaseManager) -> list[ErasureProof]:
    """Finish the erasures that are not finished
    (:func:`~pjai.app.erasedkeys.unfinished_erasures`): those whose persona's data keys the
    key ring still holds (a process stopped between the erasure event and the keys'
    destruction, or an erasure made on another device), and those that owe a rewrite (a
    process stopped after the erasure event or the keys went, or a file that could not
    be rewritten then): the keys are destroyed and the files rewritten as
    :func:`erase_persona` does. Run on opening a data directory; of processes doing it
    at once, one destroys the keys (under the key ring's write lock) and the others
    find nothing left to destroy, and each rewrite is whole, so that whichever clears
    the mark clears it rightly. One waiting for the sync server with no key left is not
    tried: until the server confirms it, the store and SQL keep the rows it deleted.
    What is still not rewritten is logged. The keys an erased persona left beside a
    persona given her id again are destroyed too
    (:func:`~pjai.app.erasedkeys.destroy_replaced_keys`), and the store and SQL
    compacted."""
    codec = manager.schema.codec
    if isinstance(codec, FieldCodec):
        replaced = destroy_replaced_keys(codec.keys, partial(event_log, manager), manager.query)
        if replaced:
            _compact(data_dir, manager, replaced)
    due = unfinished_erasures(manager)
    if not due:  # the common case, at every opening: nothing more to read
        return []
    held = codec.keys.scopes() if isinstance(codec, FieldCodec) else {}
    waiting = pending_erasures(manager)
    due = [p for p in due if p in held or p not in waiting]
    proofs = []
    copies_only = copies_left(data_dir.path)
    for persona_id in due:
        if persona_id in copies_only and persona_id not in held:
            copies = _copies(data_dir)
            if not copies:  # deleted since: nothing is left
                rewrite_done(data_dir.path, persona_id)
            for reason in copies:
                log.warning("erasure of %s: %s", persona_id, reason)
            continue
        try:
            proofs.append(erase_persona(data_dir, manager, persona_id))
        except (PjaiError, OSError, apsw.Error) as exc:
            if isinstance(codec, FieldCodec) and persona_id in codec.keys.scopes():
                raise  # the keys are still here: the directory must not open readable
            # What failed is a rewrite (SQL away, a file held), which the mark keeps
            # owed for the next opening. The directory opens all the same.
            log.warning("finishing the erasure of %s: %s", persona_id, exc)
    for proof in proofs:
        for reason in proof.unfinished:
            log.warning("erasure of %s: %s", proof.persona_id, reason)
    return proofs


def _compact(data_dir: DataDir, manager: HybridDatabaseManager, persona_ids: list[str]) -> None:
    """Compact the store and the SQL shards after the keys of ``persona_ids``' erased
    namesakes went (:func:`~pjai.app.erasedkeys.destroy_replaced_keys`); what is not
    compacted is logged."""
    try:
        emptied = manager.compact_store()
    except PjaiError as exc:
        emptied = None
        log.warning("compacting %s: %s", data_dir.store_path.name, exc)
    done = manager.shards.compact()
    if emptied is False or len(done) < len(manager.shards):
        log.warning(
            "the erased namesakes of %s may leave rows in freed pages until the next "
            "compaction: another process reads an older state",
            ", ".join(persona_ids),
        )


def rewrites_due(data_dir: DataDir, manager: HybridDatabaseManager) -> list[str]:
    """The personas whose erasure owes a rewrite (:mod:`pjai.app.erasing`) and whose rows
    neither the store nor SQL holds any more (an erasure made on another device is
    marked as its keys go, maybe before its event comes; a synced directory's SQL
    applies an erasure once the server confirms it): the ones a rewrite of the files
    now leaves no page of."""
    marked = rewrites_owed(data_dir.path)
    if data_dir.damaged_copies():  # only deleting them finishes those: no rewrite does
        marked = [p for p in marked if p not in copies_left(data_dir.path)]
    held: set[str] = set()
    for chunk in in_parts(marked):
        held |= {
            row.id for row in manager.query(select(personas.c.id).where(personas.c.id.in_(chunk)))
        }
    return [p for p in marked if p not in held and not _in_sql(manager, p)]


def finish_rewrites(
    data_dir: DataDir, manager: HybridDatabaseManager, persona_ids: Collection[str]
) -> None:
    """Finish the erasures of ``persona_ids`` once the store and SQL were rewritten
    without their rows (by a syncing directory, :class:`~pjai.app.tending.KeysIn`): the
    vector file and the legacy import report are rewritten without them too, and each
    mark is cleared when nothing is left unfinished; what is, is logged, and the next
    opening of the directory tries again (:func:`finish_erasures`)."""
    if not persona_ids:
        return
    events = event_log(manager)
    for persona_id in sorted(persona_ids):
        _, _, unfinished = rewrite_beside(data_dir, events, persona_id, again=True)
        copies = _copies(data_dir)
        for reason in unfinished + copies:
            log.warning("erasure of %s: %s", persona_id, reason)
        _settle_mark(data_dir, persona_id, unfinished, copies)


def _take_back_if_held(manager: HybridDatabaseManager, owed: Owed, persona_id: str) -> None:
    """Take back the mark an erasure made before its event, whose commit failed, while
    the persona's row is still there: nothing was deleted by it, no rewrite is owed by
    it. Only its own mark: another process's erasure, under way at once, made one of its
    own, which stays while its rewrite is owed, whether it commits before or after this
    reads the row. Gone (an erasure by another process came first), or when that cannot
    be read, the mark stays: owed, or, for a persona with a row, one that no opening
    rewrites for (as a key exchange leaves one until the persona's erasure comes)."""
    try:
        held = manager.query(select(personas.c.id).where(personas.c.id == persona_id))
    except PjaiError as exc:
        log.warning("keeping the erasure mark of %s: %s", persona_id, exc)
        return
    if held:
        take_back(owed)


def _settle_mark(
    data_dir: DataDir, persona_id: str, unfinished: list[str], copies: list[str]
) -> None:
    """Clear the persona's mark once every file is rewritten; with damaged copies left,
    which no rewrite reaches, note that only deleting them is left, so that opening the
    directory does not rewrite every file again while they are there."""
    if unfinished:
        return
    if copies:
        only_copies_left(data_dir.path, persona_id)
    else:
        rewrite_done(data_dir.path, persona_id)


def _copies(data_dir: DataDir) -> list[str]:
    """The damaged copies a repair set aside, each as what an erasure leaves unfinished."""
    return [
        f"{copy}: a damaged copy that `pjai repair` set aside may hold the persona's rows in "
        "plaintext, and PJai does not rewrite a damaged file; delete it (with its -wal or "
        "-journal beside it) once it is not needed"
        for copy in data_dir.damaged_copies()
    ]


def _rewrite(
    data_dir: DataDir, manager: HybridDatabaseManager, persona_id: str
) -> tuple[list[str], list[str]]:
    """Compact the store and the SQL shards; what was rewritten, and what was not."""
    rewritten, unfinished = [], []
    store, name = manager.store, data_dir.store_path.name
    # With the store off its file still holds the persona's rows: it takes the erasure
    # in from SQL's journal and is rewritten too.
    try:
        emptied = manager.compact_store()
    except PjaiError as exc:
        unfinished.append(f"{name}: cannot rewrite it now ({exc})")
        emptied = None
    if emptied is not None:
        if store is not None and store.sync and store.pending_count:
            # A pending event keeps the changeset of what it changed (the deleted rows,
            # for the erasure itself) until the sync server confirms it.
            unfinished.append(
                f"{name}: {store.pending_count} events wait for the sync server and keep "
                "the rows they changed until it confirms them"
            )
        elif not emptied:
            unfinished.append(f"{name}: another process still reads an older state of it")
        else:
            rewritten.append(name)
    done = manager.shards.compact()
    # A synced directory's SQL applies the erasure once the sync server confirms it:
    # until then its shard holds the rows, rewritten or not.
    holding = manager.shards.for_persona(persona_id)
    waiting = _in_sql(manager, persona_id)
    for shard in manager.shards:
        if shard is holding and waiting:
            unfinished.append(
                f"{shard.url}: holds the persona's rows until the sync server confirms the erasure"
            )
        elif shard.url in done:
            rewritten.append(shard.url)
        else:
            unfinished.append(f"{shard.url}: another connection still reads an older state of it")
    return rewritten, unfinished


def _in_sql(manager: HybridDatabaseManager, persona_id: str) -> bool:
    """Whether the SQL shard of ``persona_id`` holds its row."""
    with manager.shards.for_persona(persona_id).engine.connect() as conn:
        query = select(personas.c.id).where(personas.c.id == persona_id)
        return conn.execute(query).first() is not None


def _rows(manager: HybridDatabaseManager, persona_id: str) -> dict[str, int]:
    tables = {t.name: t for t in manager.schema.metadata.sorted_tables}
    counted = {name: persona_rows(manager, tables[name], persona_id) for name in ERASED_TABLES}
    return counted | {"personas": 1}
