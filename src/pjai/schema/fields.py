"""Constrained field types shared by event payloads.

The constraints are checked whenever a payload is decoded: on commit, on rebase, on
replay and at the sync server, so every copy of the data obeys the same rules. Every
bound is one that each backend can store (:mod:`pjai.schema.limits`): integers kept in
``Integer`` columns stay within 32 bits, day counts and rates stay where time
arithmetic cannot overflow.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from msgspec import Meta

from pjai.schema.limits import INT32_MAX

__all__ = [
    "CONTENT_MAX_LENGTH",
    "ID_MAX_LENGTH",
    "PATTERN_WORDS",
    "Colour",
    "Content",
    "Count",
    "DayCount",
    "DayRate",
    "Days",
    "Id",
    "LinkKind",
    "MemoryType",
    "Name",
    "NonNegative",
    "Percent",
    "PositiveFloat",
    "PositiveInt",
    "Source",
    "Tag",
    "Tier",
    "TierChangeReason",
    "UnitInterval",
    "UtcDatetime",
]

ID_MAX_LENGTH = 128
"""The most characters an id may have."""

Id = Annotated[str, Meta(min_length=1, max_length=ID_MAX_LENGTH)]
"""A client-generated identifier, opaque to PJai: 1-128 characters."""

Name = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"\S")]
"""A display name: 1-200 characters, not blank."""

CONTENT_MAX_LENGTH = 1_000_000
"""The most characters a memory's or a message's text may hold."""

Content = Annotated[str, Meta(min_length=1, max_length=CONTENT_MAX_LENGTH, pattern=r"\S")]
"""Memory text: up to a million characters, not blank."""

Tag = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"(?s)^\S(.*\S)?$")]
"""A tag: 1-64 characters without surrounding whitespace."""

MemoryType = Annotated[str, Meta(min_length=1, max_length=32)]
"""A memory type such as ``note``, ``fact``, ``preference``, ``event``, ``conversation``."""

Percent = Annotated[int, Meta(ge=0, le=100)]
"""A trait strength, 0-100."""

UnitInterval = Annotated[float, Meta(ge=0.0, le=1.0)]
"""A value within 0..1 (importance, thresholds)."""

PositiveInt = Annotated[int, Meta(ge=1, le=INT32_MAX)]
"""A size or capacity: 1 to 2,147,483,647."""

Count = Annotated[int, Meta(ge=0, le=INT32_MAX)]
"""How many times: 0 to 2,147,483,647."""

DayCount = Annotated[int, Meta(ge=1, le=365_000)]
"""A whole number of days, up to a thousand years."""

Days = Annotated[float, Meta(gt=0.0, le=365_000.0)]
"""A positive span in days, up to a thousand years."""

DayRate = Annotated[float, Meta(ge=0.0, le=1_000.0)]
"""A rate per day, 0 to 1,000."""

NonNegative = Annotated[float, Meta(ge=0.0)]

PositiveFloat = Annotated[float, Meta(gt=0.0)]

Source = Annotated[str, Meta(min_length=1, max_length=64)]
"""Where imported data came from, such as ``pjai-desktop``."""

UtcDatetime = Annotated[datetime, Meta(tz=True)]
"""A timezone-aware datetime; stored in UTC."""

Proof = Annotated[str, Meta(pattern="^[0-9a-f]{64}$")]
"""A proof that a device of the store made an event (``Event.PROVED``): an HMAC-SHA256
under the store key, in hex (:mod:`pjai.security.fields`)."""

Tier = Literal["hot", "warm", "cold"]
"""A memory tier, hottest first (``pjai.schema.TIERS`` lists them in this order)."""

LinkKind = Literal["references", "similar", "related", "causal", "temporal"]
"""The kind of a link between two memories (``pjai.schema.LINK_KINDS`` lists them)."""

TierChangeReason = Literal[
    "optimization", "access_pattern", "importance_change", "age_decay", "manual"
]

_COLOUR = r"^#[0-9a-fA-F]{6}$"
Colour = Annotated[str, Meta(pattern=_COLOUR)]
"""A colour written ``#rrggbb``."""

PATTERN_WORDS = {
    _COLOUR: "a colour written #rrggbb (six hex digits)",
    r"\S": "text that is not blank",
    r"(?s)^\S(.*\S)?$": "text without spaces at either end",
}
"""What the text patterns of event fields ask for, in words for refusals."""
