"""What a form says when a service refused what was typed into it."""

from __future__ import annotations

import re
from collections.abc import Mapping

from pjai.errors import EventError, PjaiError

__all__ = ["field_error", "form_error"]

_ITEM = re.compile(r"(?P<field>.+)\[(?P<index>\d+)\]")


def form_error(exc: PjaiError, labels: Mapping[str, str] | None = None) -> str:
    """The field and the reason, without the event's name (a person typed a value, not
    an event): ``name: expected text that is not blank``. ``labels`` names a field as
    the form shows it, where that is not the field's own name (``Memory / Importance
    threshold`` for ``memory.importance_threshold``); an item of a list is named by its
    list's label and its place (``Tags, item 2`` for ``tags[1]``)."""
    if isinstance(exc, EventError) and exc.field:
        return f"{_shown(exc.field, labels or {})}: {exc.reason}"
    return str(exc)


def field_error(exc: PjaiError, field: str, labels: Mapping[str, str] | None = None) -> str:
    """What the input of ``field`` says under itself when a service refused what was
    typed: the reason alone when that field is at fault (the input names it), else as
    :func:`form_error` says it."""
    if isinstance(exc, EventError) and exc.field == field:
        return exc.reason
    return form_error(exc, labels)


def _shown(field: str, labels: Mapping[str, str]) -> str:
    if field in labels:
        return labels[field]
    item = _ITEM.fullmatch(field)
    if item is not None and item["field"] in labels:
        return f"{labels[item['field']]}, item {int(item['index']) + 1}"
    return field
