"""Live panels: parts of a page fed by a live query, each with a loading state and its
own error boundary.

A :class:`LivePanel` subscribes to a live query when it is made, draws the first result
at once, and unsubscribes when it is deleted (its page closed, its view left, its parent
rebuilt). Later results arrive on
whatever thread committed (this page, another tab, the watch thread that takes in other
processes' commits, a sync client); the panel hands them to the page's event loop and
renders only the newest, so a burst of commits costs one render.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from nicegui import ui

from pjai.store import LiveQuery, Row, Store, Subscription

__all__ = [
    "SWITCH_CHECK_S",
    "LivePanel",
    "Render",
    "ShownKey",
    "Source",
    "Update",
    "failure_card",
    "failure_text",
    "follow_the_store",
    "tell_failures",
]

log = logging.getLogger(__name__)

Source = Callable[[], LiveQuery]
"""Makes the panel's live query (called once, and again on retry)."""

Render = Callable[[list[Row]], None]
"""Builds the panel's content from the query's rows, inside the panel."""

Update = Callable[[list[Row]], bool]
"""Brings the content drawn before up to date with new rows in place, if it can (then
``True``: nothing is rebuilt)."""


SWITCH_CHECK_S = 1.0
"""How often a part that follows the store looks whether it was switched off or on."""


def follow_the_store(
    content: ui.element, store: Callable[[], Store | None], build: Callable[[], object]
) -> None:
    """Fill ``content`` with ``build()`` now, and again whenever the store is switched
    off or on (``store()`` is another object, or none): for parts that read the store
    that is open, which a switch does not move as it moves live queries."""
    shown: list[Store | None] = []

    def follow() -> None:
        now = store()
        if shown and shown[0] is now:
            return
        shown[:] = [now]
        content.clear()
        with content:
            build()

    follow()
    ui.timer(SWITCH_CHECK_S, follow)


def failure_text(exc: BaseException) -> str:
    """What a panel says when its query or its rendering failed."""
    return str(exc) or type(exc).__name__


@contextmanager
def failure_card(name: str, exc: BaseException) -> Iterator[ui.card]:
    """A panel's error boundary: a card saying that ``name`` failed and why; the caller
    adds what comes next (a retry button, a note that it reads again)."""
    with ui.card().classes("w-full bg-red-1").props('data-panel-error=""') as shown:
        ui.label(f"{name}: {failure_text(exc)}").classes("text-negative")
        yield shown


_NOTHING = object()

T = TypeVar("T")


class ShownKey(Generic[T]):
    """The key of the result a panel shows (``key(result)``), to leave a result whose
    key is the same undrawn; with no ``key``, every result is drawn."""

    def __init__(self, key: Callable[[T], object] | None) -> None:
        self._key = key
        self._shown: object = _NOTHING

    def changed(self, result: T) -> bool:
        """Whether ``result`` is to be drawn; if so, its key is the one shown from now."""
        if self._key is None:
            return True
        key = self._key(result)
        if key == self._shown:
            return False
        self._shown = key
        return True

    def forget(self) -> None:
        """Draw the next result, whatever its key (the panel shows no result now)."""
        self._shown = _NOTHING


def tell_failures() -> None:
    """Show the person every error a handler of this page lets through (a button whose
    command was refused, say), rather than only logging it."""

    def tell(exc: Exception) -> None:
        ui.notify(failure_text(exc), type="negative", multi_line=True)

    ui.on_exception(tell)


class LivePanel(ui.column):
    """A column whose content ``render`` rebuilds from each new result of ``source``.

    Until the first result it shows a spinner; if making the query, running it or
    rendering fails, it shows the error and a retry button, and the rest of the page
    goes on. ``name`` labels the panel in logs and in its error message. With ``key``,
    a new result is rendered only when ``key(rows)`` differs from the last rendered one.
    With ``update``, a new result is first offered to the content already drawn (a form
    keeps what a person is typing that way); it is rebuilt only if ``update`` says no.
    """

    def __init__(
        self,
        name: str,
        source: Source,
        render: Render,
        *,
        key: Callable[[list[Row]], object] | None = None,
        update: Update | None = None,
    ) -> None:
        super().__init__()
        self.classes("w-full")
        self.name = name
        self._source = source
        self._render = render
        self._shown = ShownKey(key)
        self._update = update
        self._drawn = False
        self._loop = asyncio.get_running_loop()
        self._guard = threading.Lock()
        self._latest: list[Row] | None = None
        self._scheduled = False
        self._subscription: Subscription | None = None
        self.renders = 0
        """How many times the content was rebuilt."""
        self.props(f'data-panel="{name}"')
        self._start()

    def retry(self) -> None:
        """Make the query again and show its result (after a failure)."""
        self._stop()
        self._start()

    def _start(self) -> None:
        self._shown.forget()
        self._drawn = False
        self.clear()
        with self, ui.row().classes("items-center gap-2 text-grey-7"):
            ui.spinner(size="sm")
            ui.label("loading…")
        try:
            live = self._source()
            # The first result arrives during subscribe, on this thread: it is drawn
            # before the page is sent, with no round trip to the browser.
            with self._guard:
                self._scheduled = True
            self._subscription = live.subscribe(self._arrived)
        except Exception as exc:
            with self._guard:
                self._scheduled = False
            self._failed(exc)
            return
        self._show()

    def _arrived(self, rows: list[Row]) -> None:
        # Any thread: keep the newest rows; one render is scheduled at a time.
        with self._guard:
            self._latest = rows
            if self._scheduled:
                return
            self._scheduled = True
        self._loop.call_soon_threadsafe(self._show)

    def _show(self) -> None:
        with self._guard:
            rows, self._latest, self._scheduled = self._latest, None, False
        if rows is None or self.is_deleted:
            return
        if not self._shown.changed(rows):
            return
        try:
            if self._drawn and self._update is not None:
                with self:
                    if self._update(rows):
                        return
            self.clear()
            self._drawn = False
            with self:
                self._render(rows)
            self._drawn = True
            self.renders += 1
        except Exception as exc:
            self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        log.warning("panel %s failed", self.name, exc_info=exc)
        self.clear()
        with self, failure_card(self.name, exc):
            # The retry clears this button: run it after the click's handler returns.
            retry = ui.button("Retry", icon="refresh").props("flat dense")
            retry.on_click(lambda: self._loop.call_soon(self.retry))

    def _stop(self) -> None:
        if self._subscription is not None:
            self._subscription.unsubscribe()
            self._subscription = None

    def _handle_delete(self) -> None:
        self._stop()
        super()._handle_delete()
