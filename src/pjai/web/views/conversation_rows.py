"""Rows of the conversations view kept in place as live results change, and how their
times read."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Generic, TypeVar

from nicegui import ui

from pjai.store import Row

__all__ = ["KeyedRows", "when"]

E = TypeVar("E", bound=ui.element)


def when(at: datetime) -> str:
    """A time as the view shows it: short, in UTC (the time every instance agrees on)."""
    return f"{at:%b %d, %H:%M} UTC"


class KeyedRows(Generic[E]):
    """One element per row in ``container``, kept in the rows' order by row id.

    On each result only what changed is sent to the browser: elements of rows that went
    are removed, new rows get an element from ``make``, rows that stay keep theirs
    (``refresh`` updates it) and move only if their place changed. A conversation of
    hundreds of messages thus costs one new element per message, not a new page.
    """

    def __init__(
        self,
        container: ui.element,
        make: Callable[[Row], E],
        refresh: Callable[[E, Row], None] | None = None,
    ) -> None:
        self.container = container
        self._make = make
        self._refresh = refresh
        self.elements: dict[str, E] = {}
        """The element of each shown row, by row id."""

    def show(self, rows: list[Row]) -> None:
        """Make the container show ``rows`` (each with an ``id``), in this order."""
        wanted = {row.id for row in rows}
        for gone in [key for key in self.elements if key not in wanted]:
            self.container.remove(self.elements.pop(gone))
        children = self.container.default_slot.children
        for index, row in enumerate(rows):
            element = self.elements.get(row.id)
            if element is None:
                with self.container:
                    element = self._make(row)
                self.elements[row.id] = element
            elif self._refresh is not None:
                self._refresh(element, row)
            if children[index] is not element:
                element.move(target_index=index)
