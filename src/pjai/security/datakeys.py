"""A key ring's data keys: a persona's sensitive fields are encrypted with its data key,
kept wrapped by the store key. Rotating gives a persona a new data key for its future
events; the old ones stay to read the past until the persona is erased
(:mod:`pjai.security.shredding`).

A persona's data keys form a lineage: the first is made as the persona is created
(:meth:`DataKeys.start`), each rotation keeps its lineage (the first key's id), and the
lineage is bound to the wrapped key as its scope is. An erased persona's id may be given
again by a device that had not heard of the erasure: the new persona's keys are of a
lineage of their own, and which of them a write is sealed with is the lineage of the
persona it writes for (:meth:`DataKeys.current`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pjai.errors import KeyRingError
from pjai.schema.types import new_id
from pjai.security.keyfile import data_key_aad, now
from pjai.security.locks import KEY_BYTES, NONCE_BYTES, blob
from pjai.security.ringfile import RingFile, locked, nullable_text

__all__ = ["DataKeys"]


class DataKeys(RingFile):
    """The data keys of a key ring, by scope (a persona id, or
    :data:`~pjai.security.keys.STORE_SCOPE`)."""

    @locked
    def current(
        self, scope: str, made_with: Callable[[], str | None] | None = None
    ) -> tuple[str, bytes]:
        """The id and key that new sensitive fields of ``scope`` (a persona id, or
        :data:`~pjai.security.keys.STORE_SCOPE`) are encrypted with; made on first use.
        Raises :class:`~pjai.errors.KeyRingError` for an erased persona.

        When the ring holds keys of more than one lineage of ``scope``, or erased some
        (a persona given the id of one erased, whose keys came here beside the erased
        one's, or after them), which persona the key is for decides: ``made_with()`` is
        the id of the key that sealed that persona's creation (``None``: not known), and
        the key is the newest of its lineage, made the current one (:meth:`current_of`;
        refused for the erased one)."""
        self._follow_others()
        found = self._current.get(scope)
        if found is None:
            row = self._current_row(scope)
            if row is None:
                return self._new_data_key(scope, None)
            key_id = str(row[0])
            self._unwrap_data_key(key_id, scope, blob(row[1]), blob(row[2]), nullable_text(row[3]))
            found = self._current[scope] = key_id, {} if self._ambiguous(scope) else None
        key_id, chosen = found
        if chosen is not None and made_with is not None and (creation := made_with()) is not None:
            # Read once, while it stays current (what changes the keys forgets it).
            if chosen.get(creation) != key_id:
                chosen[creation] = self.current_of(scope, creation)[0]
            key_id = chosen[creation]
        return key_id, self._cache[key_id]

    @locked
    def current_of(self, scope: str, creation: str) -> tuple[str, bytes]:
        """The id and key that new sensitive fields of the persona of ``scope`` whose
        creation was sealed with the key ``creation`` are encrypted with: the newest key
        of that key's lineage (of the keys with none, for a key without one), made the
        current one of ``scope``. The current one as :meth:`current` has it when the
        ring holds no key of that lineage and it was not erased here. Raises
        :class:`~pjai.errors.KeyRingError` when it was: that persona was erased."""
        self._follow_others()
        held = self._conn.execute(
            "SELECT lineage FROM data_keys WHERE id = ? AND scope = ?", (creation, scope)
        ).fetchone()
        # A key not held (maybe not here yet) tells its lineage only if it started it.
        lineage = creation if held is None else nullable_text(held[0])
        row = self._conn.execute(
            "SELECT id, nonce, wrapped, lineage, current FROM data_keys "
            "WHERE scope = ? AND lineage IS ? ORDER BY id DESC LIMIT 1",
            (scope, lineage),
        ).fetchone()
        if row is None:
            if self._was_erased(scope, lineage) or self.was_erased(creation):
                raise KeyRingError(f"{scope} was erased: nothing new is encrypted for it")
            return self.current(scope)
        key_id = str(row[0])
        key = self._unwrap_data_key(
            key_id, scope, blob(row[1]), blob(row[2]), nullable_text(row[3])
        )
        if not row[4]:
            with self._writing():
                self._conn.execute(
                    "UPDATE data_keys SET current = (id = ?) WHERE scope = ?", (key_id, scope)
                )
            held_before = self._current.get(scope)
            self._current[scope] = key_id, {} if held_before is None else held_before[1]
        return key_id, key

    @locked
    def start(self, scope: str) -> tuple[str, bytes]:
        """A new data key for ``scope``, the first of a new lineage, that its new events
        are encrypted with from now on: a persona is being created (maybe with the id of
        one erased on a device this one has not heard from yet). The keys held for the
        scope stay, for reading; an erasure of the persona that had them does not
        destroy this one. Raises :class:`~pjai.errors.KeyRingError` when a persona of
        that id was erased here."""
        return self._new_data_key(scope, None, first=True)

    @locked
    def key(self, key_id: str) -> bytes | None:
        """The data key ``key_id``, or ``None`` if it was erased or never was here."""
        return self._held(key_id)

    @locked
    def key_of(self, scope: str, key_id: str) -> bytes | None:
        """The data key ``key_id`` if it is one of ``scope``'s, or ``None`` if it is
        another scope's, was erased or never was here."""
        key = self._held(key_id)
        return key if key is not None and self._scopes.get(key_id) == scope else None

    def _held(self, key_id: str) -> bytes | None:
        self._follow_others()
        found = self._cache.get(key_id)
        if found is not None:
            return found
        row = self._conn.execute(
            "SELECT scope, nonce, wrapped, lineage FROM data_keys WHERE id = ?", (key_id,)
        ).fetchone()
        if row is None:
            return None
        return self._unwrap_data_key(
            key_id, str(row[0]), blob(row[1]), blob(row[2]), nullable_text(row[3])
        )

    @locked
    def rotate(self, scope: str) -> str:
        """A new data key for ``scope``'s future events, of the current key's lineage;
        the old ones stay for reading. Returns the new key's id."""
        self._follow_others()
        row = self._current_row(scope)
        return self._new_data_key(scope, None if row is None else nullable_text(row[3]))[0]

    @locked
    def scopes(self) -> dict[str, int]:
        """How many data keys each scope holds."""
        rows = self._conn.execute("SELECT scope, count(*) FROM data_keys GROUP BY scope")
        return {str(scope): int(count) for scope, count in rows}

    @locked
    def key_ids(self) -> set[str]:
        """The ids of the data keys held here."""
        return {str(key_id) for (key_id,) in self._conn.execute("SELECT id FROM data_keys")}

    @locked
    def lineages(self, scope: str) -> dict[str, str | None]:
        """The lineage of each data key ``scope`` holds, by key id (``None``: a key with
        no lineage)."""
        rows = self._conn.execute("SELECT id, lineage FROM data_keys WHERE scope = ?", (scope,))
        return {str(key_id): nullable_text(lineage) for key_id, lineage in rows}

    @locked
    def was_erased(self, key_id: str) -> bool:
        """Whether ``key_id`` was destroyed here."""
        return (
            self._conn.execute("SELECT 1 FROM erased WHERE key_id = ?", (key_id,)).fetchone()
            is not None
        )

    def _current_row(self, scope: str) -> Any:
        """The current key of ``scope`` as the file holds it (id, nonce, wrapped,
        lineage); when none is current (its lineage was erased and another stays: a
        persona given the id of one erased), the newest it holds, made the current one;
        ``None`` when it holds none."""
        row = self._conn.execute(
            "SELECT id, nonce, wrapped, lineage, current FROM data_keys WHERE scope = ? "
            "ORDER BY current DESC, id DESC LIMIT 1",
            (scope,),
        ).fetchone()
        if row is not None and not row[4]:
            with self._writing():
                self._conn.execute(
                    "UPDATE data_keys SET current = (id = ?) WHERE scope = ?", (row[0], scope)
                )
        return row

    def _new_data_key(
        self, scope: str, lineage: str | None, *, first: bool = False
    ) -> tuple[str, bytes]:
        """A new key of ``scope`` made current: of ``lineage`` (``None``: none), or with
        ``first`` the first of a lineage of its own."""
        key_id, key = new_id(), secrets.token_bytes(KEY_BYTES)
        if first:
            lineage = key_id
        nonce = secrets.token_bytes(NONCE_BYTES)
        wrapped = AESGCM(self._store_key).encrypt(nonce, key, data_key_aad(key_id, scope, lineage))
        with self._writing():  # an erasure by another process is not passed by
            # A persona is not made anew here with the id of one erased here: the
            # erasure is known on this device (its keys went), if not yet its event.
            if self._was_erased(scope, None if first else lineage):
                raise KeyRingError(f"{scope} was erased: nothing new is encrypted for it")
            self._conn.execute("UPDATE data_keys SET current = 0 WHERE scope = ?", (scope,))
            self._conn.execute(
                "INSERT INTO data_keys (id, scope, nonce, wrapped, current, created_at, lineage) "
                "VALUES (?, ?, ?, ?, 1, ?, ?)",
                (key_id, scope, nonce, wrapped, now(), lineage),
            )
        self._cache[key_id], self._scopes[key_id] = key, scope
        self._current.pop(scope, None)  # read again: a lineage may have been added
        return key_id, key

    def _ambiguous(self, scope: str) -> bool:
        """Whether ``scope`` holds keys of more than one lineage (those with none
        counting as one), or had keys erased here: a persona of its id was erased, and
        the one written for may be her, not the persona made anew whose keys are left."""
        count = self._conn.execute(
            "SELECT count(DISTINCT coalesce(lineage, '')) FROM data_keys WHERE scope = ?",
            (scope,),
        ).get
        return int(count) > 1 or self._was_erased(scope, None)

    def _was_erased(self, scope: str, lineage: str | None) -> bool:
        """Whether the keys of ``lineage`` of ``scope`` were erased here; for no lineage,
        whether any key of the scope was (an erasure destroys those with none too)."""
        if lineage is None:
            found = self._conn.execute("SELECT 1 FROM erased WHERE scope = ?", (scope,))
        else:
            found = self._conn.execute(
                "SELECT 1 FROM erased WHERE scope = ? AND lineage = ?", (scope, lineage)
            )
        return found.fetchone() is not None

    def _unwrap_data_key(
        self, key_id: str, scope: str, nonce: bytes, wrapped: bytes, lineage: str | None = None
    ) -> bytes:
        try:
            aad = data_key_aad(key_id, scope, lineage)
            key = AESGCM(self._store_key).decrypt(nonce, wrapped, aad)
        except InvalidTag as exc:
            raise KeyRingError(
                f"data key {key_id} of {scope} does not open: it was altered"
            ) from exc
        self._cache[key_id], self._scopes[key_id] = key, scope
        return key
