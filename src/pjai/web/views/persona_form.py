"""The edit form of one persona: name, description, style and its settings.

The form is built from one version of the persona. When another version is saved (in
another tab, on another instance, from the CLI) the form takes it field by field
(:meth:`PersonaForm.merge`): fields the person has not touched take the new value and
are highlighted; fields they changed too keep what they typed, with the saved value
shown beside the form. A save sends only what differs from the latest version; if it is
refused, the error shows above the form, what was typed stays, and the persona is as it
was.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import groupby
from typing import Any

from nicegui import ui
from nicegui.elements.mixins.validation_element import ValidationElement
from nicegui.elements.mixins.value_element import ValueElement

from pjai.app.display import shown_text
from pjai.errors import EventError, PjaiError
from pjai.schema.models import Persona
from pjai.web.app import WebApp
from pjai.web.views.forms import form_error
from pjai.web.views.persona_fields import (
    IDENTITY_LABELS,
    Merged,
    SettingField,
    form_value,
    label,
    merge,
    setting_edits,
    setting_fields,
)

__all__ = ["PROFILE", "PersonaForm"]

PROFILE = ("name", "description", "style")
"""The persona's own fields, edited beside its settings."""

_CARDS = {
    "personality": ("Personality", "psychology"),
    "memory": ("Memory", "memory"),
    "privacy": ("Privacy", "lock"),
}
# Long and rarely changed: folded away until asked for.
_FOLDED = {"scoring"}
# Inputs of one layout share a grid; numbers and choices fit three to a row on a wide
# screen, and every input has a row of its own on a phone.
_TWO = "grid-cols-1 sm:grid-cols-2"
_THREE = "grid-cols-1 sm:grid-cols-2 md:grid-cols-3"
_GRIDS = {
    "bool": _TWO,
    "percent": "grid-cols-1",
    "text": _TWO,
    "traits": _TWO,
}


class PersonaForm:
    """The form for ``persona``; ``Save`` commits through the persona service."""

    def __init__(self, web: WebApp, persona: Persona) -> None:
        self.web = web
        self.persona = persona
        self.fields = setting_fields(persona)
        self.inputs: dict[str, ValueElement[Any]] = {}
        with (
            ui.column()
            .classes("w-full gap-3")
            .props('data-testid="persona-form"')
            .mark("persona-form")
        ):
            self._actions()
            self.merged = ui.column().classes("w-full gap-1 bg-amber-1 q-pa-sm rounded")
            self.merged.props('data-testid="persona-form-merged"').mark("persona-form-merged")
            self.merged.visible = False
            self.error = ui.label().classes("w-full text-negative bg-red-1 q-pa-sm rounded")
            self.error.props('data-testid="persona-form-error"').mark("persona-form-error")
            self.error.visible = False
            self._profile()
            for group, fields in groupby(self.fields, key=lambda f: f.group):
                self._card(group, list(fields))

    def values(self) -> dict[str, Any]:
        """What the inputs hold, by setting path (and ``name``, ``description``, ``style``)."""
        return {path: element.value for path, element in self.inputs.items()}

    def merge(self, newer: Persona) -> bool:
        """Take ``newer``, a version of this persona saved elsewhere, without losing what
        is typed (see the module); ``False`` if the form cannot show it (another persona,
        or deleted) and is to be rebuilt."""
        if newer.id != self.persona.id or newer.deleted_at is not None:
            return False
        fields = setting_fields(newer)
        theirs = {f.path: f.value for f in fields} | _profile_of(newer)
        merged = merge(self._base(), self._typed(), theirs)
        for change in merged:
            element = self.inputs[change.path]
            if not change.kept_mine:
                element.value = change.theirs
            element.classes("bg-amber-1")
            element.props(f'data-merged="{"kept-mine" if change.kept_mine else "theirs"}"')
        self.persona, self.fields = newer, fields
        self.title.text = shown_text(newer.name)
        if merged:
            self._show_merged(merged)
        return True

    def save(self) -> None:
        """Commit what changed, or show why it cannot be."""
        values = self.values()
        profile = self._profile_changes(values)
        edits = setting_edits(self.fields, values)
        if not profile and not edits:
            self._show_error(None)
            ui.notify("Nothing to save: no setting changed")
            return
        try:
            saved = self.web.services.personas.update(
                self.persona.id,
                name=profile.get("name"),
                description=profile.get("description"),
                style=profile.get("style"),
                sets=edits,
            )
        except PjaiError as exc:
            self._show_error(form_error(exc, self._labels()))
            self._mark_field(exc)
            return
        self._show_error(None)
        self._clear_merged()
        moved = (
            f"; the optimizer then changed {len(saved.moves)} memory(ies)" if saved.moves else ""
        )
        ui.notify(f"Saved {shown_text(saved.persona.name)}{moved}", type="positive")
        for note in saved.notes:
            ui.notify(note, type="warning", multi_line=True)

    def discard(self) -> None:
        """Put back the values the form was built with."""
        for field in self.fields:
            self.inputs[field.path].value = field.value
        for name, value in self._profile_values().items():
            self.inputs[name].value = value
        self._show_error(None)
        self._clear_merged()

    def _base(self) -> dict[str, Any]:
        return {f.path: f.value for f in self.fields} | self._profile_values()

    def _typed(self) -> dict[str, Any]:
        values = self.values()
        typed = {f.path: form_value(f, values[f.path]) for f in self.fields}
        return typed | {name: values[name] or "" for name in PROFILE}

    def _show_merged(self, merged: list[Merged]) -> None:
        with self.merged:
            for change in merged:
                name = _field_label(self.fields, change.path)
                if change.kept_mine:
                    text = (
                        f"{name} was saved elsewhere as “{_shown(change.theirs)}”; "
                        "yours is kept, and Save replaces it."
                    )
                else:
                    text = f"{name} was saved elsewhere: now “{_shown(change.theirs)}”."
                ui.label(text).classes("text-body2")
        self.merged.visible = True

    def _clear_merged(self) -> None:
        self.merged.clear()
        self.merged.visible = False
        for element in self.inputs.values():
            if "data-merged" in element.props:
                element.classes(remove="bg-amber-1").props(remove="data-merged")

    def _show_error(self, message: str | None) -> None:
        self.error.text = message or ""
        self.error.visible = message is not None
        for element in self.inputs.values():
            if isinstance(element, ValidationElement) and element.error:
                element.error = None

    def _labels(self) -> dict[str, str]:
        """Each event field as the form shows it: its card, section and input."""
        shown = dict(IDENTITY_LABELS)
        for field in self.fields:
            sections = [label(name) for name in field.section.split(".") if name]
            path = [_CARDS[field.group][0], *sections, field.label]
            shown[field.path] = " / ".join(path)
        return shown

    def _mark_field(self, exc: PjaiError) -> None:
        # The input at fault says so too: the message above may be far from it.
        if isinstance(exc, EventError) and exc.field is not None:
            element = self.inputs.get({"communication_style": "style"}.get(exc.field, exc.field))
            if isinstance(element, ValidationElement):
                element.error = exc.reason

    def _profile_values(self) -> dict[str, str]:
        return _profile_of(self.persona)

    def _profile_changes(self, values: dict[str, Any]) -> dict[str, str]:
        return {
            name: values[name] or ""
            for name, before in self._profile_values().items()
            if (values[name] or "") != before
        }

    def _actions(self) -> None:
        # The name above the buttons on a narrow screen, beside them on a wide one.
        with ui.row().classes("w-full items-center md:flex-nowrap"):
            self.title = ui.label(shown_text(self.persona.name)).classes(
                "text-h6 ellipsis min-w-0 basis-full md:basis-auto"
            )
            ui.space()
            ui.button("Discard changes", on_click=self.discard).props("flat").classes("shrink-0")
            ui.button("Save", icon="save", on_click=self.save).props(
                'data-testid="persona-save"'
            ).classes("shrink-0").mark("persona-save")

    def _profile(self) -> None:
        current = self._profile_values()
        with _card("Profile", "badge"):
            self._keep("name", ui.input("Name", value=current["name"]).classes("w-full"))
            for name, title in (("description", "Description"), ("style", "Communication style")):
                area = ui.textarea(title, value=current[name]).props("autogrow").classes("w-full")
                self._keep(name, area)

    def _card(self, group: str, fields: list[SettingField]) -> None:
        title, icon = _CARDS[group]
        with _card(title, icon):
            for top, members in groupby(fields, key=lambda f: f.section.split(".")[0]):
                if top in _FOLDED:
                    with ui.expansion(label(top)).classes("w-full").props("dense"):
                        self._sections(list(members))
                else:
                    self._sections(list(members))
            if group == "personality" and self.persona.personality.custom_traits:
                traits = self.persona.personality.custom_traits
                listed = ", ".join(f"{name} {score}" for name, score in traits.items())
                ui.label(f"Custom traits (kept as they are): {listed}").classes(
                    "text-caption text-grey-7"
                )

    def _sections(self, fields: list[SettingField]) -> None:
        for section, members in groupby(fields, key=lambda f: f.section):
            name = section.split(".")[-1]
            if name and name not in _FOLDED:
                ui.label(label(name)).classes("text-subtitle2 text-grey-8 q-mt-sm")
            self._inputs(list(members))

    def _inputs(self, fields: list[SettingField]) -> None:
        for columns, same in groupby(fields, key=lambda f: _GRIDS.get(f.kind, _THREE)):
            with ui.element("div").classes(f"w-full grid {columns} gap-x-4 gap-y-1"):
                for field in same:
                    self._keep(field.path, _input(field))

    def _keep(self, path: str, element: ValueElement[Any]) -> None:
        element.props(f'data-setting="{path}"').mark(path)
        self.inputs[path] = element


def _profile_of(persona: Persona) -> dict[str, str]:
    return {
        "name": persona.name,
        "description": persona.description,
        "style": persona.communication_style,
    }


def _field_label(fields: list[SettingField], path: str) -> str:
    found = next((f for f in fields if f.path == path), None)
    if found is None:
        return {"style": "Communication style"}.get(path, path.capitalize())
    return f"{label(found.group)}: {found.label}"


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return "empty" if value in (None, "") else shown_text(str(value))


def _card(title: str, icon: str) -> ui.card:
    card = ui.card().classes("w-full").props("flat bordered")
    with card, ui.row().classes("items-center gap-2"):
        ui.icon(icon, color="primary")
        ui.label(title).classes("text-subtitle1 text-weight-medium")
    return card


def _input(field: SettingField) -> ValueElement[Any]:
    make = _MAKERS[field.kind]
    return make(field)


def _percent(field: SettingField) -> ValueElement[Any]:
    with ui.row().classes("w-full items-center no-wrap gap-3"):
        ui.label(field.label).classes("w-40 shrink-0")
        slider = ui.slider(min=0, max=100, value=field.value).classes("grow")
        ui.label().bind_text_from(slider, "value").classes("w-8 text-right")
    return slider


def _number(field: SettingField) -> ValueElement[Any]:
    return ui.number(field.label, value=field.value)


def _optional(field: SettingField) -> ValueElement[Any]:
    return ui.number(field.label, value=field.value).props('clearable hint="empty: no limit"')


_MAKERS: dict[str, Callable[[SettingField], ValueElement[Any]]] = {
    "bool": lambda f: ui.switch(f.label, value=f.value),
    "choice": lambda f: ui.select(list(f.choices), label=f.label, value=f.value),
    "float": _number,
    "int": _number,
    "optional int": _optional,
    "percent": _percent,
    "text": lambda f: ui.input(f.label, value=f.value),
    "traits": lambda f: ui.input_chips(f.label, value=list(f.value), new_value_mode="add-unique"),
}
