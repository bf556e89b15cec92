"""Sealed columns: a shared SQL primary that holds only ciphertext of personal content.

The sensitive columns (:data:`pjai.schema.tables.SENSITIVE`: memory name, content and
summary; persona description, personality and communication style; conversation
titles and message contents; bookmark names, descriptions and filters) are written to
SQL as text of the form ``pjai-sealed:1:KEY:NONCE:DATA``: the value's JSON, padded to
a bucket (:func:`pjai.security.padding.bucket`), encrypted with AES-256-GCM under the
data key that sealed the event's fields (the current data key of the event's persona
for an event with none sealed), the associated data binding the table, the column and
the persona: a value copied to another column or another persona's row does not open.
Erasing a persona's keys therefore also leaves nothing readable in SQL, and where a
device holds the keys of an erased persona and of one given her id again (see
:mod:`pjai.security.fields`), each one's rows are sealed with her own keys.

SQL then cannot search, sort or filter on those columns; PJai reads them through the
reactive store, and :class:`ColumnSealer` opens what is read back from SQL (the
repositories, ``pjai verify``). A value that is not sealed (written before sealing was
on) is read as it is.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Mapping, Sequence
from functools import cache, partial
from typing import Any

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pjai.errors import ErasedValueError, SqlError
from pjai.schema import SCHEMA
from pjai.schema.event import Schema
from pjai.schema.ops import Compress, Compressed, Decompress, Insert, Op, TextForTier, Update
from pjai.schema.sealed import sealed_with
from pjai.schema.tables import sensitive_columns
from pjai.security.keys import STORE_SCOPE, KeyRing
from pjai.security.padding import b64, pad, unpad

__all__ = ["COLUMNS_CODEC", "PREFIX", "ColumnSealer", "is_sealed", "owner"]

COLUMNS_CODEC = "aes-256-gcm-columns/1"
PREFIX = "pjai-sealed:1:"
"""How every sealed column value begins."""


def is_sealed(value: object) -> bool:
    """Whether ``value``, as read from SQL, is a sealed column value."""
    return isinstance(value, str) and value.startswith(PREFIX)


def _aad(table: str, column: str, scope: str) -> bytes:
    return b"\x00".join((b"pjai column", table.encode(), column.encode(), scope.encode()))


def owner(table: str, row: Mapping[str, Any]) -> str | None:
    """The persona a row of ``table`` belongs to (a persona's own row: itself)."""
    value = row.get("id") if table == "personas" else row.get("persona_id")
    return value if isinstance(value, str) else None


class ColumnSealer:
    """Seals the sensitive columns of ``schema``'s tables with ``keys``, and opens them."""

    def __init__(self, keys: KeyRing, schema: Schema = SCHEMA) -> None:
        self.keys = keys
        self.name = f"{COLUMNS_CODEC}:{keys.store_key_fingerprint}"
        self.columns: Mapping[str, tuple[str, ...]] = sensitive_columns(schema.metadata)
        """Per table, the columns kept sealed."""
        self._ciphers: dict[str, AESGCM] = {}
        self._json = msgspec.json.Encoder()

    # -- writing -----------------------------------------------------------------------

    def seal_ops(
        self, ops: Sequence[Op], persona_id: str | None, stored: bytes | None = None
    ) -> list[Op]:
        """``ops`` (of one event of ``persona_id``) with each value they write to a
        sensitive column sealed under the data key that sealed ``stored``, the event's
        stored arguments, when it is one of ``persona_id``'s (the store's own key for
        none), else under its current data key. Raises
        :class:`~pjai.errors.ErasedValueError` when that key was erased (the event's
        persona was, meanwhile)."""
        sealed: list[Op] = []
        scope = persona_id or STORE_SCOPE
        key = cache(partial(self._key, scope, stored))  # once, if a value is sealed
        for op in ops:
            columns = self.columns.get(op.table)
            if (
                not columns
                or not isinstance(op, Insert | Update)
                or not any(c in op.values for c in columns)
            ):
                sealed.append(op)
                continue
            values = dict(op.values)
            for column in columns:
                if column in values:
                    values[column] = self._seal_op_value(
                        op.table, column, values[column], scope, key
                    )
            if isinstance(op, Insert):
                sealed.append(Insert(op.table, values))
            else:
                sealed.append(Update(op.table, op.where, values, op.missing))
        return sealed

    def _key(self, scope: str, stored: bytes | None) -> tuple[str, bytes]:
        """The id and key an event's rows of ``scope`` are sealed with (see
        :meth:`seal_ops`)."""
        key_id = None if stored is None else sealed_with(stored)
        if key_id is None:
            return self.keys.current(scope)
        key = self.keys.key_of(scope, key_id)
        if key is not None:
            return key_id, key
        if self.keys.was_erased(key_id):
            raise ErasedValueError(
                f"data key {key_id} of {scope} is erased: nothing of {scope} is sealed "
                "with its lineage any more"
            )
        return self.keys.current(scope)  # another scope's key: not this persona's

    def _seal_op_value(
        self,
        table: str,
        column: str,
        value: Any,
        scope: str,
        key: Callable[[], tuple[str, bytes]],
    ) -> Any:
        if isinstance(value, Compress | Decompress) or value is None:
            return value  # acts on what SQL holds, sealed or not
        if isinstance(value, Compressed):
            return Compressed(self.seal(table, column, value.text, scope, key()))
        if isinstance(value, TextForTier):
            return TextForTier(self.seal(table, column, value.text, scope, key()))
        if isinstance(value, str | int | float | bool | list | dict):
            return self.seal(table, column, value, scope, key())
        raise TypeError(f"{table}.{column}: cannot seal a {type(value).__name__} update")

    def seal_row(
        self,
        table: str,
        row: Mapping[str, Any],
        persona_id: str | None,
        stored: bytes | None = None,
    ) -> dict[str, Any]:
        """``row`` of ``table`` with its sensitive columns sealed under a data key of
        ``persona_id`` (the store's own for none) as :meth:`seal_ops` chooses it from
        ``stored``, the stored arguments of an event of hers (her creation); ``None``
        values stay ``None``."""
        sealed = dict(row)
        scope = persona_id or STORE_SCOPE
        key = cache(partial(self._key, scope, stored))  # once, if a value is sealed
        for column in self.columns.get(table, ()):
            if sealed.get(column) is not None:
                sealed[column] = self.seal(table, column, sealed[column], scope, key())
        return sealed

    def seal(
        self,
        table: str,
        column: str,
        value: Any,
        scope: str,
        key: tuple[str, bytes] | None = None,
    ) -> str:
        """``value`` of ``table.column`` of a row of ``scope`` sealed under ``key`` (an
        id and data key of ``scope``), by default ``scope``'s current data key."""
        key_id, key_bytes = self.keys.current(scope) if key is None else key
        nonce = os.urandom(12)
        data = self._cipher(key_id, key_bytes).encrypt(
            nonce, pad(self._json.encode(value)), _aad(table, column, scope)
        )
        return f"{PREFIX}{key_id}:{b64(nonce)}:{b64(data)}"

    # -- reading -----------------------------------------------------------------------

    def open_value(self, table: str, column: str, value: Any, persona_id: str | None) -> Any:
        """The plain value of ``table.column`` as SQL returned it. Raises
        :class:`~pjai.errors.ErasedValueError` when its key was erased,
        :class:`~pjai.errors.SqlError` when its key is not here (another device's) or it
        does not open (moved from another column, or altered).
        """
        if not is_sealed(value):
            return value
        try:
            key_id, nonce, data = value[len(PREFIX) :].split(":")
        except ValueError:
            raise SqlError(f"{table}.{column} holds a sealed value that is cut short") from None
        key = self.keys.key(key_id)
        if key is None:
            if self.keys.was_erased(key_id):
                raise ErasedValueError(
                    f"{table}.{column} is sealed with data key {key_id}, which is erased"
                )
            raise SqlError(
                f"{table}.{column} is sealed with data key {key_id}, which is not on this device"
            )
        try:
            plain = self._cipher(key_id, key).decrypt(
                base64.b64decode(nonce, validate=True),
                base64.b64decode(data, validate=True),
                _aad(table, column, persona_id or STORE_SCOPE),
            )
            return msgspec.json.decode(unpad(plain))
        except (InvalidTag, ValueError, msgspec.DecodeError) as exc:
            raise SqlError(
                f"{table}.{column} holds a sealed value that does not open (moved from "
                "another column or persona, or altered)"
            ) from exc

    def open_row(self, table: str, row: Mapping[str, Any]) -> dict[str, Any]:
        """``row`` of ``table`` with its sensitive columns opened."""
        opened = dict(row)
        persona_id = owner(table, row)
        for column in self.columns.get(table, ()):
            if column in opened:
                opened[column] = self.open_value(table, column, opened[column], persona_id)
        return opened

    def _cipher(self, key_id: str, key: bytes) -> AESGCM:
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            cipher = self._ciphers[key_id] = AESGCM(key)
        return cipher
