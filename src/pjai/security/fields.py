"""Field encryption: the codec that seals the sensitive fields of events.

Each sensitive field (``Event.SENSITIVE``) of a new event is encrypted with AES-256-GCM
under the current data key of the persona the event names (``persona_id``; the store's
own data key for an event that names none). The associated data binds the ciphertext
to the event's id, its type, the field's name and the persona, so a sealed value moved
to another event, type, field or persona does not open. Before encryption the field's
JSON is padded to a bucket (64 bytes, then powers of two up to 64 KiB, then multiples
of 64 KiB), so that a ciphertext's size says little about the text's. The value
becomes an envelope
(:class:`pjai.schema.sealed.Envelope`): format, key id, nonce, ciphertext.

Everything that persists or sends events (the store's log, the SQL journal, the sync
server, archives) then holds the envelopes without knowing it; the materializers see
the plain values, so the device's state and indexes work as before. Fields that are
already plain (events written before encryption was turned on) are read as they are.

A persona's creation (``v1.PersonaCreated``, ``v1.PersonaImported``) is sealed with a
new data key, the first of a lineage of its own (:meth:`KeyRing.start`), never with a
key the ring held for that id before: a persona given the id of one erased, on a
device that had not heard of the erasure and held the erased one's keys, seals
nothing with them, and the erasure of the one does not reach the other. Every other
event of a persona is sealed with a key of the lineage of the persona that the history
it follows made (:class:`~pjai.schema.codec.History`: its newest creation of that id,
whose sealed fields name the key): a device holding the keys of both, with the erased
persona's events and not yet her erasure, seals what it writes for her with hers.

An event no one may make up (``Event.PROVED``: a persona's erasure, which destroys her
keys on every device) gets a ``proof`` as it is made (:meth:`FieldCodec.prove`, never
for an event taken in from elsewhere): an HMAC-SHA256 under the store key of the
event's id, type and persona, which the sync server and a token holder cannot make.
Opening it checks the proof: one that is missing or another event's does not apply
(an :class:`~pjai.errors.EventValidationError`, so the store keeps it quarantined with
the reason), and privacy work does not count it
(:meth:`~pjai.schema.event.Schema.proven`). An erasure with no proof is taken only if
the key ring took it as applied here before this device checked proofs
(:meth:`~pjai.security.KeyRing.takes_unproven`: an erasure of a directory that was not
encrypted, or made by a PJai from before proofs).
"""

from __future__ import annotations

import base64
import hmac
import os
from functools import partial
from typing import Any

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pjai.errors import EventValidationError, KeyErasedError, KeyMissingError
from pjai.schema import SCHEMA
from pjai.schema.codec import History
from pjai.schema.event import Schema
from pjai.schema.personas import creations
from pjai.schema.sealed import ENVELOPE_KEY, is_envelope, sealed_with
from pjai.security.columns import ColumnSealer
from pjai.security.keys import STORE_SCOPE, KeyRing
from pjai.security.padding import b64, bucket, pad, unpad

__all__ = ["CODEC_NAME", "PROOF_FIELD", "PROOF_PURPOSE", "FieldCodec", "bucket"]

CODEC_NAME = "aes-256-gcm-fields/1"

PROOF_FIELD = "proof"
"""The field of a proved event (``Event.PROVED``) that holds its proof."""

PROOF_PURPOSE = "pjai event proof"
"""What an event's proof is an HMAC of, before the event's id, type and persona."""

_MARK = f'"{ENVELOPE_KEY}"'.encode()


def _aad(event_id: str, event_name: str, field: str, persona: str) -> bytes:
    parts = (b"pjai field", event_id.encode(), event_name.encode(), field.encode())
    return b"\x00".join((*parts, persona.encode()))


def _persona(doc: dict[str, Any]) -> str:
    value = doc.get("persona_id")
    return value if isinstance(value, str) else ""


class FieldCodec:
    """Seals and opens the sensitive fields of ``schema``'s events with ``keys``."""

    name: str

    def __init__(self, keys: KeyRing, schema: Schema = SCHEMA) -> None:
        self.keys = keys
        self.name = f"{CODEC_NAME}:{keys.store_key_fingerprint}"
        """The codec and the store key it seals under: a store sealed under one key
        ring opens only with that ring."""
        self._sensitive = {t.NAME: t.SENSITIVE for t in schema.event_types if t.SENSITIVE}
        self._proved = schema.proved
        self._creations = creations(schema.event_types)
        """The events that make a persona: each starts a lineage of data keys."""
        self._ciphers: dict[str, AESGCM] = {}
        self._json = msgspec.json.Encoder()
        self._columns = ColumnSealer(keys, schema)

    def columns(self) -> ColumnSealer:
        """The sealer of table columns under the same key ring."""
        return self._columns

    def seal(
        self, event_id: str, event_name: str, args: bytes, history: History | None = None
    ) -> bytes:
        """``args`` with each sensitive field present replaced by its envelope; one that
        is an envelope already stays as it is. ``history``: what the event follows,
        which tells the persona it is for when an erased persona's id was given again
        (see the module); without, the persona's current key."""
        fields = self._sensitive.get(event_name)
        if not fields:
            return args
        doc: dict[str, Any] = msgspec.json.decode(args)
        if not isinstance(doc, dict):
            return args  # refused as it is decoded
        present = [f for f in fields if f in doc and not is_envelope(doc[f])]
        if not present:
            return args
        persona = _persona(doc)
        if persona in ("", STORE_SCOPE):
            key_id, key = self.keys.current(STORE_SCOPE)
        elif event_name in self._creations:
            key_id, key = self.keys.start(persona)
        elif history is None:
            key_id, key = self.keys.current(persona)
        else:
            key_id, key = self.keys.current(persona, partial(self._made_with, persona, history))
        cipher = self._cipher(key_id, key)
        encode = self._json.encode
        for field in present:
            nonce = os.urandom(12)  # random per field: GCM never sees a nonce twice
            aad = _aad(event_id, event_name, field, persona)
            data = cipher.encrypt(nonce, pad(encode(doc[field])), aad)
            doc[field] = {ENVELOPE_KEY: 1, "key": key_id, "nonce": b64(nonce), "data": b64(data)}
        return self._json.encode(doc)

    def prove(self, event_id: str, event_name: str, stored: bytes) -> bytes:
        """``stored`` (a new event's) with its proof, for an event that needs one (see
        the module); any other as it is. Never given to an event taken in from
        elsewhere: it would prove what no device of the store made."""
        if event_name not in self._proved:
            return stored
        doc = msgspec.json.decode(stored)
        if not isinstance(doc, dict):
            return stored  # refused as it is decoded
        doc[PROOF_FIELD] = self._proof(event_id, event_name, _persona(doc))
        return self._json.encode(doc)

    def _made_with(self, persona: str, history: History) -> str | None:
        """The id of the key that sealed the creation of ``persona`` that ``history``
        holds last, or ``None`` (none, or one sealed with no key)."""
        stored = history.last(self._creations, persona)
        return None if stored is None else sealed_with(stored)

    def unseal(self, event_id: str, event_name: str, stored: bytes) -> bytes:
        """``stored`` with each envelope opened. Raises
        :class:`~pjai.errors.KeyErasedError` if its key was erased (or is not on this
        device), :class:`~pjai.errors.EventValidationError` if it does not open for this
        event and field (moved or altered), or if it is an event that needs a proof and
        has none or another's (see the module)."""
        if event_name in self._proved:
            self._check_proof(event_id, event_name, stored)
        fields = self._sensitive.get(event_name)
        if not fields or _MARK not in stored:
            return stored
        doc: dict[str, Any] = msgspec.json.decode(stored)
        for field in fields:
            sealed = doc.get(field)
            if isinstance(sealed, dict) and is_envelope(sealed):
                doc[field] = self._open(event_id, event_name, field, _persona(doc), sealed)
        return self._json.encode(doc)

    def _proof(self, event_id: str, event_name: str, persona: str) -> str:
        return self.keys.proof(PROOF_PURPOSE, event_id, event_name, persona)

    def _check_proof(self, event_id: str, event_name: str, stored: bytes) -> None:
        doc = msgspec.json.decode(stored)
        if not isinstance(doc, dict):
            return  # refused as it is decoded
        persona = _persona(doc)
        proof = doc.get(PROOF_FIELD)
        if proof is None:
            if self.keys.takes_unproven(event_id):
                return  # applied here before this device checked proofs
            reason = (
                "carries no proof that a device of this store made it: not applied "
                "(made up by the sync server or a token holder, or made by a device of "
                "a PJai from before proofs, which must be updated and erase again); "
                "`pjai doctor` lists it"
            )
        elif isinstance(proof, str) and hmac.compare_digest(
            proof.encode(), self._proof(event_id, event_name, persona).encode()
        ):
            return
        else:
            reason = (
                f"its proof is not the one a device of this store makes for event "
                f"{event_id} (made up, or taken from another event): not applied; "
                "`pjai doctor` lists it"
            )
        raise EventValidationError(event_name, reason, field=PROOF_FIELD)

    def _open(
        self, event_id: str, event_name: str, field: str, persona: str, sealed: dict[str, Any]
    ) -> Any:
        key_id = str(sealed.get("key"))
        # Asked of the key ring each time (a dictionary look-up there): an erasure
        # takes effect at once.
        key = self.keys.key(key_id)
        if key is None:
            self._ciphers.pop(key_id, None)
            if self.keys.was_erased(key_id):
                raise KeyErasedError(
                    event_name, f"its data key {key_id} is erased: it cannot be read", field=field
                )
            raise KeyMissingError(
                event_name,
                f"its data key {key_id} is not on this device: it applies once the key is",
                field=field,
            )
        cipher = self._cipher(key_id, key)
        try:
            nonce = base64.b64decode(str(sealed["nonce"]), validate=True)
            data = base64.b64decode(str(sealed["data"]), validate=True)
            padded = cipher.decrypt(nonce, data, _aad(event_id, event_name, field, persona))
            return msgspec.json.decode(unpad(padded))
        except (InvalidTag, KeyError, ValueError, msgspec.DecodeError) as exc:
            raise EventValidationError(
                event_name,
                f"sealed value does not open for event {event_id} (moved from another "
                "event, field or persona, or altered)",
                field=field,
            ) from exc

    def _cipher(self, key_id: str, key: bytes) -> AESGCM:
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            cipher = self._ciphers[key_id] = AESGCM(key)
        return cipher
