"""The active persona, which every persona-scoped view follows."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from pjai.app.reads import personas as persona_reads
from pjai.app.reads.personas import PersonaChoice
from pjai.store import Row
from pjai.web.app import WebApp
from pjai.web.live import LivePanel

__all__ = ["follow_active"]


def follow_active(web: WebApp, build: Callable[[PersonaChoice | None], None]) -> LivePanel:
    """A panel that runs ``build(active persona)`` now and again whenever another persona
    becomes the active one: the instant switch every persona-scoped view follows."""

    def render(rows: list[Row]) -> None:
        found = persona_reads.active(rows)
        # Tests and `pjai bench ui` read which persona a view shows from this attribute.
        panel.props(f'data-persona="{found.id if found else ""}"')
        build(found)

    def key(rows: list[Row]) -> object:
        found = persona_reads.active(rows)
        return found.id if found else None

    # Results render on a later turn of the event loop, once ``panel`` is bound.
    panel = LivePanel(
        "active persona", partial(persona_reads.choices, web.manager), render, key=key
    )
    return panel
