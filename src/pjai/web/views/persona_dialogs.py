"""The personas view's dialogs: create a persona from a template, confirm a deletion,
confirm an erasure by typing the persona's name."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from nicegui import ui

from pjai.app import TEMPLATES
from pjai.app.display import shown_text, typed_form
from pjai.errors import PjaiError
from pjai.schema.models import Persona
from pjai.web.app import WebApp
from pjai.web.views.forms import form_error
from pjai.web.views.persona_fields import IDENTITY_LABELS

__all__ = ["BLANK", "confirm", "confirm_erasure", "create_persona"]

BLANK = "blank"
"""The template choice that starts from the default settings."""


def create_persona(web: WebApp, created: Callable[[Persona], None]) -> ui.dialog:
    """Open a dialog that creates a persona from a template; ``created`` gets it."""
    options = {BLANK: "Blank (default settings)"} | {name: name.capitalize() for name in TEMPLATES}
    with ui.dialog() as dialog, ui.card().classes("w-[32rem]").props('data-testid="create-dialog"'):
        ui.label("New persona").classes("text-h6")
        name = ui.input("Name").classes("w-full").mark("new-name")
        template = ui.select(options, value=BLANK, label="Template").classes("w-full")
        template.mark("new-template")
        about = ui.label().classes("text-caption text-grey-7")
        description = ui.input("Description (empty: the template's)").classes("w-full")
        style = ui.input("Communication style (empty: the template's)").classes("w-full")
        activate = ui.checkbox("Make it the active persona")
        error = ui.label().classes("text-negative").mark("create-error")
        error.visible = False

        def describe() -> None:
            chosen = TEMPLATES.get(template.value)
            about.text = (
                f"{chosen.description} Style: {chosen.communication_style}"
                if chosen
                else "Default personality, memory and privacy settings."
            )

        def create() -> None:
            try:
                persona = web.services.personas.create(
                    name.value or "",
                    template_name=None if template.value == BLANK else template.value,
                    description=description.value or None,
                    style=style.value or None,
                    activate=activate.value,
                )
            except PjaiError as exc:
                error.text, error.visible = form_error(exc, IDENTITY_LABELS), True
                return
            ui.notify(f"Created {persona.name}", type="positive")
            created(persona)
            dialog.close()  # last: closing deletes the dialog this handler runs in

        template.on_value_change(describe)
        name.on("keydown.enter", create)
        describe()
        with ui.row().classes("w-full justify-end"):
            ui.button("Cancel", on_click=dialog.close).props("flat")
            ui.button("Create", icon="add", on_click=create).mark("create-confirm").props(
                'data-testid="create-confirm"'
            )
    _open_once(dialog)
    return dialog


def confirm(title: str, text: str, action: str, confirmed: Callable[[], None]) -> ui.dialog:
    """Open a dialog asking to confirm ``action``; ``confirmed`` runs if it is."""
    with ui.dialog() as dialog, ui.card().props('data-testid="confirm-dialog"'):
        # A long name breaks where it must rather than pushing the dialog off the screen
        # (the title cut at three lines: the text below has all of it).
        ui.label(title).classes("text-h6 wrap-anywhere ellipsis-3-lines")
        ui.label(text).classes("max-w-md wrap-anywhere")

        def go() -> None:
            confirmed()
            dialog.close()  # last: closing deletes the dialog this handler runs in

        with ui.row().classes("w-full justify-end"):
            ui.button("Cancel", on_click=dialog.close).props("flat").mark("confirm-cancel")
            ui.button(action, color="negative", on_click=go).mark("confirm-action").props(
                'data-testid="confirm-action"'
            )
    _open_once(dialog)
    return dialog


def confirm_erasure(name: str, confirmed: Callable[[], Awaitable[None]]) -> ui.dialog:
    """Open a dialog that erases the persona called ``name`` once its name is typed:
    as the dialog shows it, or as it reads (see :func:`~pjai.app.display.typed_form`)."""
    shown = " ".join(shown_text(name).split())
    accepted = {typed_form(name), typed_form(shown)} - {""}
    with ui.dialog() as dialog, ui.card().classes("w-[34rem]").props('data-testid="erase-dialog"'):
        ui.label(f"Erase {shown} for good?").classes("text-h6 wrap-anywhere")
        ui.label(
            "Every record of it is deleted, its keys are destroyed so that its history "
            "opens nowhere, and the files are rewritten. This cannot be undone, and it "
            "is not the same as Delete (which can be restored)."
        )
        typed = ui.input(f"Type {shown} to confirm").classes("w-full").mark("erase-name")

        async def go() -> None:
            # The dialog stays while the erasure runs, so that what it says afterwards
            # has a place: closing deletes the dialog this handler runs in.
            typed.disable()
            button.disable()
            dialog.props("persistent")
            try:
                await confirmed()
            finally:
                dialog.close()

        with ui.row().classes("w-full justify-end"):
            ui.button("Cancel", on_click=dialog.close).props("flat")
            button = ui.button("Erase for good", color="negative", on_click=go)
            button.props('data-testid="erase-confirm"').mark("erase-confirm")
            button.bind_enabled_from(
                typed, "value", backward=lambda v: typed_form(v or "") in accepted
            )
    _open_once(dialog)
    return dialog


def _open_once(dialog: ui.dialog) -> None:
    """Open ``dialog``; once closed, it goes (each command makes a new one)."""
    dialog.on_value_change(lambda event: None if event.value else dialog.delete())
    dialog.open()
