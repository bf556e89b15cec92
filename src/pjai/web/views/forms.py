"""What a form says when a service refused what was typed into it."""

from __future__ import annotations

from pjai.errors import EventError, PjaiError

__all__ = ["form_error"]


def form_error(exc: PjaiError) -> str:
    """The field and the reason, without the event's name (a person typed a value, not
    an event): ``name: expected text that is not blank``."""
    if isinstance(exc, EventError) and exc.field:
        return f"{exc.field}: {exc.reason}"
    return str(exc)
