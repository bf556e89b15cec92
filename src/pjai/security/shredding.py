"""Erasing a persona's data keys (crypto-shredding): what they encrypted, in every
log, can no longer be read where the key ring was the only copy. An erasure destroys
the lineages of the persona it erases (:mod:`pjai.security.datakeys`), with the keys
that have none (made before keys had lineages, or for a persona created before
encryption was on), never a lineage a persona given its id again started."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from pjai.errors import KeyRingError
from pjai.security.datakeys import DataKeys
from pjai.security.keyfile import now
from pjai.security.locks import blob, fingerprint
from pjai.security.ringfile import locked, nullable_text

__all__ = ["ErasedKey", "Shredding"]


@dataclass(frozen=True, slots=True)
class ErasedKey:
    """A data key that was destroyed: which, of what scope, its fingerprint, when."""

    key_id: str
    scope: str
    fingerprint: str
    erased_at: datetime


class Shredding(DataKeys):
    """Destroying data keys, and what was destroyed."""

    @locked
    def erase(self, scope: str, lineages: Collection[str] | None = None) -> list[ErasedKey]:
        """Destroy the data keys of ``scope``: what they encrypted can no longer be read,
        anywhere this file was the only copy. With ``lineages``, only the keys of those
        lineages and the keys with no lineage (made before keys had one, or for a
        persona created without one): the keys of one persona, not those of a persona
        given its id again after it was erased, which started a lineage of its own.
        Without, every key of the scope (an erasure that does not tell its lineages).
        Returns what was destroyed (ids and fingerprints, no key material)."""
        at = now()
        erased = []
        which = "scope = ?"
        args = [scope]
        if lineages is not None:
            which += " AND (lineage IS NULL OR lineage IN (SELECT value FROM json_each(?)))"
            args.append(json.dumps(sorted(lineages)))
        # Read and deleted under one write lock: a key another process gives the scope
        # meanwhile (a rotation, a key taken from the sync server) is destroyed and
        # recorded with the others, not destroyed unrecorded or kept.
        with self._writing():
            rows = self._conn.execute(
                f"SELECT id, nonce, wrapped, lineage FROM data_keys WHERE {which}", args
            ).fetchall()
            for key_id, nonce, wrapped, lineage in rows:
                try:
                    found = self._unwrap_data_key(
                        str(key_id), scope, blob(nonce), blob(wrapped), nullable_text(lineage)
                    )
                    mark = fingerprint(found)
                except KeyRingError:  # an altered key is destroyed all the same
                    mark = "unreadable"
                self._conn.execute(
                    "INSERT OR REPLACE INTO erased (key_id, scope, fingerprint, erased_at, "
                    "lineage) VALUES (?, ?, ?, ?, ?)",
                    (key_id, scope, mark, at, lineage),
                )
                erased.append(ErasedKey(str(key_id), scope, mark, datetime.fromisoformat(at)))
            self._conn.execute(f"DELETE FROM data_keys WHERE {which}", args)
        for gone in erased:
            self._cache.pop(gone.key_id, None)
        self._current.pop(scope, None)
        self._conn.execute("VACUUM")  # no free page keeps a copy
        return erased

    @locked
    def take_unproven(self, event_ids: Collection[str]) -> None:
        """Take the erasures ``event_ids``, which carry no proof, as made by a device of
        the store: those this directory applied before it checked proofs (an erasure
        of a directory that was not encrypted, or made by a PJai from before proofs).
        From then on, no other erasure without a proof is taken
        (:meth:`takes_unproven`)."""
        at = now()
        with self._writing():
            self._conn.executemany(
                "INSERT OR IGNORE INTO unproven (event_id, taken_at) VALUES (?, ?)",
                [(event_id, at) for event_id in event_ids],
            )
            self._conn.execute(
                "INSERT OR IGNORE INTO meta (name, value) VALUES ('unproven taken', ?)", (at,)
            )

    @locked
    def unproven_taken(self) -> bool:
        """Whether :meth:`take_unproven` was called: a ring from before proofs has not
        (nor has a ring before its directory first opened)."""
        found = self._conn.execute("SELECT 1 FROM meta WHERE name = 'unproven taken'")
        return found.fetchone() is not None

    @locked
    def takes_unproven(self, event_id: str) -> bool:
        """Whether the erasure ``event_id``, which carries no proof, is taken as made by
        a device of the store: one :meth:`take_unproven` took, or any until it was
        called (the directory is then opened by a PJai from before proofs, or not yet
        opened since)."""
        if not self.unproven_taken():
            return True
        found = self._conn.execute("SELECT 1 FROM unproven WHERE event_id = ?", (event_id,))
        return found.fetchone() is not None

    @locked
    def erased(self) -> list[ErasedKey]:
        """Every data key destroyed here, oldest first."""
        rows = self._conn.execute(
            "SELECT key_id, scope, fingerprint, erased_at FROM erased ORDER BY erased_at, key_id"
        )
        return [
            ErasedKey(str(a), str(b), str(c), datetime.fromisoformat(str(d))) for a, b, c, d in rows
        ]
