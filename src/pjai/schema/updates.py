"""What an update event writes: the fields it sets (the others it leaves ``UNSET``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from msgspec import UNSET

from pjai.errors import EventValidationError
from pjai.schema.event import Event

__all__ = ["set_fields", "soft_deleted", "stamped", "undeleted"]


def set_fields(event: Event, *names: str) -> dict[str, Any]:
    """The values of the fields ``names`` that ``event`` sets, by name, in that order."""
    return {name: value for name in names if (value := getattr(event, name)) is not UNSET}


def stamped(event: Event, values: dict[str, Any], at: datetime) -> dict[str, Any]:
    """``values`` and ``updated_at``; an update event that names no field is refused."""
    if not values:
        raise EventValidationError(event.NAME, "names no field to change")
    return {**values, "updated_at": at}


def soft_deleted(at: datetime) -> dict[str, Any]:
    """What soft-deleting a row at ``at`` writes: the row is kept, marked deleted."""
    return {"deleted_at": at, "updated_at": at}


def undeleted(at: datetime) -> dict[str, Any]:
    """What bringing a soft-deleted row back at ``at`` writes."""
    return {"deleted_at": None, "updated_at": at}
