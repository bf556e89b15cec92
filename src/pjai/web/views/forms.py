"""What a form says when a service refused what was typed into it."""

from __future__ import annotations

from collections.abc import Mapping

from pjai.errors import EventError, PjaiError

__all__ = ["form_error"]


def form_error(exc: PjaiError, labels: Mapping[str, str] | None = None) -> str:
    """The field and the reason, without the event's name (a person typed a value, not
    an event): ``name: expected text that is not blank``. ``labels`` names a field as
    the form shows it, where that is not the field's own name (``Memory / Importance
    threshold`` for ``memory.importance_threshold``)."""
    if isinstance(exc, EventError) and exc.field:
        return f"{(labels or {}).get(exc.field, exc.field)}: {exc.reason}"
    return str(exc)
