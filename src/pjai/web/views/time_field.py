"""The time fields of the filter bars: a UTC time typed as ``2026-01-31`` or
``2026-01-31 14:30``, a wrong one marked as an error on its field."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from nicegui import ui

from pjai.errors import PjaiError
from pjai.web.views.explorer_selection import parse_time

__all__ = ["read_time", "time_field"]


def time_field(label: str, testid: str, changed: Callable[..., Any]) -> ui.input:
    """A field for a time (``testid`` its test id and mark); ``changed`` runs on Enter,
    when the field is left or cleared."""
    field = (
        ui.input(label, placeholder="2026-01-31 or 2026-01-31 14:30")
        .props(f'dense outlined clearable data-testid="{testid}"')
        .classes("w-[15rem]")
    )
    for event in ("keydown.enter", "blur", "clear"):
        field.on(event, changed)
    return field.mark(testid)


def read_time(field: ui.input, *, end: bool, fallback: datetime | None) -> datetime | None:
    """The time ``field`` holds (``None`` when empty; with ``end``, a day given means its
    end). A wrong one is shown as the field's error, and ``fallback`` stands for it."""
    try:
        value = parse_time(field.value or "", end=end)
    except PjaiError as exc:
        field.props["error"] = True
        field.props["error-message"] = str(exc)
        field.update()
        return fallback
    if field.props.pop("error", None):
        field.props.pop("error-message", None)
        field.update()
    return value
