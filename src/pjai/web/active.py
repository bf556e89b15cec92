"""The active persona, which every persona-scoped view follows."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from nicegui import ui

from pjai.app.reads import personas as persona_reads
from pjai.app.reads.personas import PersonaChoice
from pjai.store import Row
from pjai.web.app import WebApp
from pjai.web.live import LivePanel

__all__ = ["follow_active", "persona_page"]


def _nobody(any_persona: bool, then: str) -> None:
    """Why no persona's data shows: none yet (make one), or none is active (pick one)."""
    with ui.row().classes("items-center gap-2 text-grey-8").props('data-testid="no-persona"'):
        if any_persona:
            ui.label(f"No persona is active: choose one in the header, and {then}.")
        else:
            ui.label("No persona yet: create one in")
            ui.link("Personas", "/personas")
            ui.label(f"and {then}.")


def follow_active(
    web: WebApp, build: Callable[[PersonaChoice | None], None], *, then: str | None = None
) -> ui.column:
    """A panel that runs ``build(active persona)`` now and again whenever another persona
    becomes the active one: the instant switch every persona-scoped view follows. With
    ``then`` (what the view shows of a persona), the panel itself says, without one,
    whether there is no persona yet or none is active; ``build`` gets one always."""

    def render(rows: list[Row]) -> None:
        found = persona_reads.active(rows)
        # Tests and `pjai bench ui` read which persona a view shows from this attribute.
        # Set as a value, never written into props text, where an id could add props.
        holder.props["data-persona"] = found.id if found else ""
        if found is None and then is not None:
            _nobody(bool(rows), then)
            return
        build(found)

    def key(rows: list[Row]) -> object:
        found = persona_reads.active(rows)
        return (found.id, found.name) if found else bool(rows)  # a rename shows at once

    # The persona's id goes on a holder that exists before the panel's first render.
    with ui.column().classes("w-full") as holder:
        LivePanel("active persona", partial(persona_reads.choices, web.manager), render, key=key)
    return holder


def persona_page(
    web: WebApp, title: str, build: Callable[[PersonaChoice], object], *, then: str
) -> None:
    """A view of the active persona headed by ``title``: ``build(persona)`` fills it,
    again whenever another persona becomes the active one; without one it says why and
    what to do, and that ``then`` (what the view shows of a persona)."""

    def fill(persona: PersonaChoice | None) -> None:
        assert persona is not None  # follow_active says when there is none
        build(persona)

    with ui.column().classes("w-full gap-3 q-pa-md"):
        ui.label(title).classes("text-h5")
        follow_active(web, fill, then=then)
