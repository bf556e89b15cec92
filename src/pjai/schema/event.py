"""Events: versioned names, typed msgspec payloads, pure materializers.

An event type is a frozen msgspec Struct with a class-level ``NAME`` (``v1.MemoryAdded``)
and a ``materialize`` method that returns :mod:`pjai.schema.ops`. A :class:`Schema`
gathers the tables and event types of one PJai version, encodes and validates payloads,
and upcasts payloads logged under an older name; a payload it refuses is told in words
(:mod:`pjai.schema.validation`).
"""

from __future__ import annotations

import copy
import hashlib
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal, get_args

import msgspec
from sqlalchemy import MetaData
from sqlalchemy.dialects import sqlite
from sqlalchemy.schema import CreateIndex, CreateTable

from pjai.errors import (
    EventValidationError,
    MaterializationError,
    PjaiError,
    UnknownEventError,
)
from pjai.schema.codec import PLAIN, Codec
from pjai.schema.limits import (
    JSON_ESCAPE,
    MAX_ARGS_BYTES,
    Walk,
    encoding_problem,
    exact_time_problem,
    walker,
)
from pjai.schema.ops import Op
from pjai.schema.records import EventRecord
from pjai.schema.sealed import ENVELOPE_KEY, sealed_type
from pjai.schema.validation import NOTHING, shown
from pjai.schema.validation import validation_error as validation_error

__all__ = ["ConflictPolicy", "Context", "Event", "Materialized", "Schema", "Upcaster"]

ConflictPolicy = Literal["last_writer_wins", "commutative", "precondition"]
"""How an event combines with concurrent events from other instances (docs/events.md).

``last_writer_wins``: the fields it sets take its values if it comes later in the global
order. ``commutative``: it combines with concurrent events of its kind in any order
(counts add up, the latest time is kept). ``precondition``: it applies only while what
it requires still holds (the id is free, the memory is live) and is rejected otherwise.
Under every policy an event whose target is gone is rejected, with the reason and the
event that won kept in the audit trail.
"""


@dataclass(frozen=True, slots=True)
class Context:
    """What a materializer may know besides the payload: the event's id and time."""

    event_id: str
    at: datetime


class Event(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False):
    """Base of every event payload. Subclasses set ``NAME`` and define ``materialize``.

    Payloads hold no reference cycles, so they are not tracked by the garbage collector.
    """

    NAME: ClassVar[str] = ""
    CONFLICT: ClassVar[ConflictPolicy]
    SENSITIVE: ClassVar[tuple[str, ...]] = ()
    """The fields that hold what a person wrote (text, a name, tags, a personality): a
    field encryption codec seals them (:mod:`pjai.security.fields`); the others stay
    readable to the sync server and the SQL primary."""
    PROVED: ClassVar[bool] = False
    """Whether the event carries a ``proof`` field that a device of the store made it,
    which a field encryption codec makes with the store key and checks as it opens the
    event (:mod:`pjai.security.fields`): an event no one may make up, not the sync
    server nor a token holder, because what it does cannot be undone."""

    def materialize(self, ctx: Context) -> Sequence[Op]:
        """The writes this event makes, computed from the payload and ``ctx`` alone."""
        raise TypeError(f"{type(self).__name__} defines no materializer")


@dataclass(frozen=True, slots=True)
class Materialized:
    """A logged event with its decoded payload and the writes its materializer made."""

    record: EventRecord
    payload: Event
    ops: Sequence[Op]

    @property
    def persona_id(self) -> str | None:
        """The persona the event belongs to, if it names one (SQL shards route by it)."""
        return getattr(self.payload, "persona_id", None)


@dataclass(frozen=True, slots=True)
class Upcaster:
    """Turns the JSON arguments of ``source`` events into arguments of ``target``."""

    source: str
    target: str
    convert: Callable[[dict[str, Any]], dict[str, Any]]


def _longest_field(event: Event) -> str:
    """The name of ``event``'s field that takes the most JSON."""
    return max(event.__struct_fields__, key=lambda f: len(msgspec.json.encode(getattr(event, f))))


def _field_value(event: Event, path: str | None) -> Any:
    """The value at a dotted field path of ``event``, or ``NOTHING``."""
    value: Any = event
    for part in (path or "").split(".") if path else ():
        value = getattr(value, part, NOTHING)
        if value is NOTHING:
            break
    return NOTHING if value is event else value


class Schema:
    """The tables and event types of one PJai version.

    ``version`` is bumped whenever a materializer changes what it writes; together
    with the table DDL it forms the :attr:`fingerprint` that tells a store to rebuild
    its state from the event log. Arguments pass through :attr:`codec` on their way
    to and from a record (:mod:`pjai.schema.codec`).
    """

    def __init__(
        self,
        metadata: MetaData,
        events: Iterable[type[Event]],
        *,
        upcasters: Iterable[Upcaster] = (),
        version: int = 1,
        derived: Sequence[str] = (),
        derived_fill: Sequence[str] = (),
        derived_flush: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.metadata = metadata
        self.version = version
        self.derived = list(derived)
        """Statements creating what the store derives from the tables (full-text index)."""
        self.derived_fill = list(derived_fill)
        """Statements filling the derived structures from existing rows."""
        self.derived_flush = {t: list(s) for t, s in (derived_flush or {}).items()}
        """Per table that notes changed rows, the statements that bring the derived
        structures up to date with them; the store runs them before each commit."""
        self._types: dict[str, type[Event]] = {}
        for event_type in events:
            name = event_type.NAME
            if not re.fullmatch(r"v[1-9][0-9]*\.[A-Z][A-Za-z0-9]*", name):
                raise ValueError(f"{event_type.__name__}.NAME {name!r} is not like 'v1.Name'")
            if name in self._types:
                raise ValueError(f"event name {name} is declared twice")
            policy = getattr(event_type, "CONFLICT", None)
            if policy not in get_args(ConflictPolicy):
                raise ValueError(
                    f"{event_type.__name__}.CONFLICT is {policy!r}; declare one of "
                    f"{', '.join(get_args(ConflictPolicy))}"
                )
            self._types[name] = event_type
        # Checks of the limits every backend can store (pjai.schema.limits); making
        # them raises at once for an integer field without bounds. Each walks only the
        # fields it needs: all values, the times, or the times of a payload to encode.
        types = self._types.items()
        self._limits: dict[str, Walk] = {n: walker(t) for n, t in types}
        self._times: dict[str, Walk] = {n: walker(t, text=None) for n, t in types}
        self._exact_times: dict[str, Walk] = {
            n: walker(t, text=None, time=exact_time_problem) for n, t in types
        }
        self.proved = frozenset(n for n, t in types if t.PROVED)
        """The names of the events that carry a proof (``Event.PROVED``)."""
        self._upcasters = {u.source: u for u in upcasters}
        for upcaster in self._upcasters.values():
            if upcaster.source in self._types:
                raise ValueError(f"{upcaster.source} has both a type and an upcaster")
        self.codec: Codec = PLAIN
        """How arguments are stored; :meth:`with_codec` gives a schema with another."""
        self._encoder = msgspec.json.Encoder()
        self._decoders = {n: msgspec.json.Decoder(t) for n, t in self._types.items()}
        self._sealed_decoders = {
            n: msgspec.json.Decoder(sealed)
            for n, t in self._types.items()
            if (sealed := sealed_type(t)) is not None
        }
        self._sealed_limits: dict[str, Walk] = {
            n: walker(d.type) for n, d in self._sealed_decoders.items()
        }
        self.table_ddl, self.index_ddl = self._sqlite_ddl()
        self.ddl = [*self.table_ddl, *self.index_ddl]
        flush = [f"{t}: {s}" for t, f in self.derived_flush.items() for s in f]
        parts = [*self.ddl, *self.derived, *self.derived_fill, *flush, *sorted(self._types)]
        digest = hashlib.sha256("\n".join(parts).encode())
        digest.update(f"version={version}".encode())
        self.fingerprint = digest.hexdigest()[:16]

    def with_codec(self, codec: Codec) -> Schema:
        """This schema, storing arguments through ``codec`` (same tables, same events)."""
        other = copy.copy(self)
        other.codec = codec
        return other

    @property
    def event_names(self) -> list[str]:
        """The names of the event types this schema materializes."""
        return sorted(self._types)

    def tables(self) -> list[str]:
        """The names of the state tables."""
        return [table.name for table in self.metadata.sorted_tables]

    @property
    def event_types(self) -> list[type[Event]]:
        """The event types this schema materializes, by name."""
        return [self._types[name] for name in sorted(self._types)]

    def knows(self, name: str) -> bool:
        """Whether events called ``name`` are materialized (directly or upcast)."""
        return name in self._types or name in self._upcasters

    def name_of(self, event: Event) -> str:
        """The registered name of ``event``'s type, or :class:`UnknownEventError`."""
        name = type(event).NAME
        if self._types.get(name) is not type(event):
            raise UnknownEventError(
                name or type(event).__name__,
                f"{type(event).__qualname__} is not an event type of this schema",
            )
        return name

    def encode(self, event: Event) -> tuple[str, Event, bytes]:
        """Validate ``event``; return its name, the validated payload and its JSON
        arguments (the :attr:`codec` seals them when the record is made, with its id:
        :func:`~pjai.schema.records.stamp`)."""
        name = self.name_of(event)
        if (problem := self._exact_times[name](event)) is not None:
            value = _field_value(event, problem[0])
            reason = problem[1] if value is NOTHING else f"{problem[1]}, got {shown(value)}"
            raise EventValidationError(name, reason, field=problem[0] or None)
        try:
            args = self._encoder.encode(event)
        except UnicodeEncodeError as exc:
            problem = walker(type(event), text=encoding_problem, time=None)(event)
            field, reason = problem or (None, f"text is not valid Unicode: {exc}")
            raise EventValidationError(name, reason, field=field or None) from exc
        if len(args) > MAX_ARGS_BYTES:
            raise EventValidationError(
                name,
                f"makes the event's arguments {len(args):,} bytes of JSON; an event may "
                f"hold at most {MAX_ARGS_BYTES:,} (the most sync carries)",
                field=_longest_field(event),
            )
        try:
            payload = self._decode(name, args, times_checked=True)
        except EventValidationError as exc:
            value = _field_value(event, exc.field)
            if value is NOTHING:
                raise
            if isinstance(value, float) and not math.isfinite(value):
                reason = f"must be a finite number, got {value!r}"  # JSON wrote it as null
            else:
                reason = f"{exc.reason}, got {shown(value)}"
            raise EventValidationError(name, reason, field=exc.field) from exc.__cause__
        return name, payload, args

    def decode(self, name: str, args: bytes | str, *, event_id: str | None = None) -> Event:
        """Decode and validate a record's arguments, upcasting older names first. With a
        codec other than plain they are unsealed first, which needs the record's
        ``event_id``."""
        if self.codec is not PLAIN:
            if event_id is None:
                raise TypeError(f"decoding sealed {name} arguments needs the event's id")
            stored = args.encode() if isinstance(args, str) else args
            args = self.codec.unseal(event_id, name, stored)
        return self._decode(name, args, times_checked=False)

    def proven(self, records: Iterable[EventRecord]) -> list[EventRecord]:
        """``records`` without the events that need a proof (``Event.PROVED``: an
        erasure) whose proof :attr:`codec` refuses, as one no device of the store made
        (:mod:`pjai.security.fields`): what privacy work counts as done."""
        kept = []
        for record in records:
            if record.name in self.proved and self.codec is not PLAIN:
                try:
                    self.codec.unseal(record.id, record.name, bytes(record.args))
                except EventValidationError:
                    continue
            kept.append(record)
        return kept

    def check(self, name: str, args: bytes | str) -> None:
        """Validate a record's stored arguments as one without its keys can (the sync
        server): as :meth:`decode` does with the plain codec, except that sensitive
        fields may be sealed, and then only their envelopes' shape is checked
        (:mod:`pjai.schema.sealed`). Raises :class:`~pjai.errors.EventError`."""
        try:
            self._decode(name, args, times_checked=False)
        except EventValidationError:
            raw = args.encode() if isinstance(args, str) else bytes(args)
            decoder = self._sealed_decoders.get(name)
            if decoder is None or ENVELOPE_KEY.encode() not in raw:
                raise
            try:
                sealed = decoder.decode(raw)
            except msgspec.ValidationError as exc:
                raise validation_error(name, exc) from exc
            except msgspec.DecodeError as exc:
                raise EventValidationError(name, f"arguments are not valid JSON: {exc}") from exc
            # The fields left plain hold to the limits every backend can store, as a
            # plain event's do.
            if (problem := self._sealed_limits[name](sealed)) is not None:
                field, reason = problem
                raise EventValidationError(name, reason, field=field or None) from None

    def materialize(self, record: EventRecord, payload: Event | None = None) -> Materialized:
        """``record``'s payload (decoded unless given) and the writes it makes.

        Raises :class:`~pjai.errors.EventError`: the arguments do not decode, or the
        materializer failed (:class:`~pjai.errors.MaterializationError`, naming it).
        """
        if payload is None:
            payload = self.decode(record.name, bytes(record.args), event_id=record.id)
        try:
            ops = payload.materialize(Context(record.id, record.at))
        except PjaiError:
            raise
        except Exception as exc:
            raise MaterializationError(record.name, f"materializer failed: {exc!r}") from exc
        return Materialized(record, payload, ops)

    def _decode(self, name: str, args: bytes | str, *, times_checked: bool) -> Event:
        decoder = self._decoders.get(name)
        try:
            if decoder is not None:
                payload = decoder.decode(args)
                if isinstance(args, str):
                    escaped = JSON_ESCAPE.decode() in args
                else:
                    escaped = JSON_ESCAPE in (args if isinstance(args, bytes) else bytes(args))
                if escaped:
                    return self._within_limits(name, payload, self._limits)
                if not times_checked:
                    return self._within_limits(name, payload, self._times)
                return payload
            upcaster = self._upcasters.get(name)
            if upcaster is None:
                raise UnknownEventError(name, "is not known to this version of PJai")
            data = msgspec.json.decode(args)
            while upcaster is not None:
                data = upcaster.convert(data)
                name = upcaster.target
                upcaster = self._upcasters.get(name)
            decoder = self._decoders.get(name)
            if decoder is None:
                raise UnknownEventError(name, "is an upcast target this schema does not define")
            return self._within_limits(name, msgspec.convert(data, decoder.type), self._limits)
        except msgspec.ValidationError as exc:
            raise validation_error(name, exc, self._types.get(name)) from exc
        except msgspec.DecodeError as exc:
            raise EventValidationError(name, f"arguments are not valid JSON: {exc}") from exc
        except UnicodeDecodeError as exc:
            reason = f"arguments are not valid UTF-8 (byte {exc.start}: {exc.reason})"
            raise EventValidationError(name, reason) from exc

    def _within_limits(self, name: str, payload: Event, walks: dict[str, Walk]) -> Event:
        """``payload`` if every backend can store its values (:mod:`pjai.schema.limits`),
        as far as the walk chosen from ``walks`` looks."""
        problem = walks[name](payload)
        if problem is not None:
            field, reason = problem
            raise EventValidationError(name, reason, field=field or None)
        return payload

    def _sqlite_ddl(self) -> tuple[list[str], list[str]]:
        dialect = sqlite.dialect()
        tables: list[str] = []
        indexes: list[str] = []
        for table in self.metadata.sorted_tables:
            tables.append(str(CreateTable(table).compile(dialect=dialect)).strip())
            for index in sorted(table.indexes, key=lambda i: i.name or ""):
                indexes.append(str(CreateIndex(index).compile(dialect=dialect)).strip())
        return tables, indexes
