"""The first-run welcome: what the dashboard shows while there is no persona yet.

It offers to create a persona from a template or to load the demo data; the
dashboard replaces it by itself as soon as a persona exists (made here, in another
tab, or by another process).
"""

from __future__ import annotations

from nicegui import ui

from pjai.app import TEMPLATES
from pjai.demo import seed
from pjai.errors import PjaiError
from pjai.web.app import WebApp
from pjai.web.views.forms import form_error
from pjai.web.views.persona_fields import IDENTITY_LABELS

__all__ = ["welcome"]


def welcome(web: WebApp, *, first_run: bool) -> None:
    """Fill the content area with the welcome. ``first_run``: no persona was ever made
    here (the demo data is offered then only: it would not bring deleted ones back)."""
    with ui.column().classes("w-full max-w-3xl gap-4").props('data-testid="welcome"'):
        ui.label("Welcome to PJai").classes("text-h4")
        if first_run:
            ui.label(
                "PJai keeps AI personas and their long-term memory. There is no persona "
                "here yet: start one from a template, or load the demo data to look around."
            ).classes("text-body1")
        else:
            ui.label(
                "Every persona here is deleted. Start a new one from a template, or "
                "restore one with `pjai persona restore`."
            ).classes("text-body1")
        with ui.row().classes("w-full gap-4 items-stretch"):
            _create(web)
            if first_run:
                _demo(web)


def _create(web: WebApp) -> None:
    with ui.card().classes("grow basis-80").props('data-card="create-persona"'):
        ui.label("Create a persona").classes("text-h6")
        name = (
            ui.input("Name")
            .classes("w-full")
            .props('data-testid="welcome-name"')
            .mark("welcome-name")
        )
        choice = (
            ui.select(
                {key: key for key in TEMPLATES},
                value=next(iter(TEMPLATES)),
                label="Template",
            )
            .classes("w-full")
            .props('data-testid="welcome-template"')
            .mark("welcome-template")
        )
        about = ui.label().classes("text-caption text-grey-7")
        about.bind_text_from(
            choice, "value", backward=lambda key: TEMPLATES[key].description if key else ""
        )

        def create() -> None:
            given = (name.value or "").strip()
            if not given:
                ui.notify("Give the persona a name.", type="warning")
                return
            try:
                web.services.personas.create(given, template_name=choice.value, activate=True)
            except PjaiError as exc:
                ui.notify(form_error(exc, IDENTITY_LABELS), type="negative", multi_line=True)

        name.on("keydown.enter", create)
        ui.button("Create", icon="add", on_click=create).props('data-testid="welcome-create"').mark(
            "welcome-create"
        )


def _demo(web: WebApp) -> None:
    with ui.card().classes("grow basis-80").props('data-card="demo"'):
        ui.label("Look around with demo data").classes("text-h6")
        ui.label(
            "Demo personas with a few memories each; one of them becomes the active "
            "persona. Loading it again adds nothing twice."
        ).classes("text-body2")

        def load() -> None:
            try:
                seed(web.manager)
            except PjaiError as exc:
                ui.notify(str(exc), type="negative")

        ui.button("Load demo data", icon="auto_awesome", on_click=load).props(
            'data-testid="welcome-demo" outline'
        ).mark("welcome-demo")
