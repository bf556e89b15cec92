"""The personas view: the list of personas with their memory counts, the edit form of
the selected one, and creating, activating, deleting and restoring personas.

The list and the form are live panels: a persona created or changed anywhere (this
page, another tab, the CLI, a sync client) shows at once. The form panel is keyed on
what the form shows, so that activations and memory changes elsewhere never touch it,
and a version saved elsewhere is merged into the open form field by field, so that
nothing a person is typing is lost.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

from nicegui import ui
from nicegui.events import ValueChangeEventArguments

from pjai.app import erase_persona, export_subject
from pjai.app.display import shown_text
from pjai.app.reads import personas_view as reads
from pjai.app.reads.personas_view import PersonaEntry
from pjai.errors import BusyError, PjaiError
from pjai.schema.models import Persona
from pjai.store import Row
from pjai.web.app import WebApp
from pjai.web.heavy import HeavyWork
from pjai.web.live import LivePanel
from pjai.web.views.persona_dialogs import confirm, confirm_erasure, create_persona
from pjai.web.views.persona_form import PersonaForm
from pjai.web.views.view import View

__all__ = ["VIEW", "PersonasPage", "build"]

_SELECTED = "bg-indigo-1"

T = TypeVar("T")


class PersonasPage:
    """One page's personas view: which persona is selected, and the panels."""

    def __init__(self, web: WebApp) -> None:
        self.web = web
        self.tab = ui.context.client.id  # one export and one erasure at a time
        self.selected: str | None = None
        self.form: PersonaForm | None = None
        self.rows: dict[str, ui.card] = {}
        source = partial(reads.roster, web.manager)
        with ui.row().classes("w-full items-center"):
            ui.label("Personas").classes("text-h5")
            ui.space()
            ui.switch("Show deleted", on_change=self._show_deleted).mark("show-deleted")
            ui.button("New persona", icon="add", on_click=self.create).props(
                'data-testid="new-persona"'
            )
        # Dialogs live outside the panels: a re-render of the list must not close one.
        self.dialogs = ui.element("div")
        # Side by side on a wide screen, the list above the settings on a narrow one.
        with ui.row().classes("w-full items-start gap-6 flex-col md:flex-row md:flex-nowrap"):
            listing = ui.column().classes("w-full md:w-80 shrink-0 gap-4")
            # Made before the list: the list's first render selects a persona into it.
            self.detail = ui.column().classes("w-full md:w-auto grow min-w-0")
            with self.detail:
                _hint("Select a persona to see and change its settings.")
            with listing:
                LivePanel("personas", source, self._render_live, key=_live_key)
                self.deleted = ui.column().classes("w-full gap-2")
                self.deleted.visible = False
                with self.deleted:
                    ui.label("Deleted").classes("text-subtitle1 text-grey-8")
                    LivePanel("deleted personas", source, self._render_deleted, key=_deleted_key)

    # -- the list -----------------------------------------------------------------

    def _show_deleted(self, event: ValueChangeEventArguments[bool | None]) -> None:
        self.deleted.visible = bool(event.value)

    def _render_live(self, rows: list[Row]) -> None:
        entries = [e for e in reads.persona_entries(rows) if not e.deleted]
        self.rows = {}
        if not entries:
            _hint("No persona yet: New persona creates one, from a template if you like.")
        for entry in entries:
            self.rows[entry.id] = self._row(entry)
        if self.selected is None and entries:
            chosen = next((e for e in entries if e.active), entries[0])
            self.select(chosen.id)
        self._highlight()

    def _render_deleted(self, rows: list[Row]) -> None:
        entries = [e for e in reads.persona_entries(rows) if e.deleted]
        if not entries:
            _hint("No deleted persona.")
        for entry in entries:
            with _row_card(entry).classes("bg-grey-2"):
                with ui.row().classes("w-full items-center no-wrap"):
                    ui.label(shown_text(entry.name)).classes(
                        "text-weight-medium text-grey-8 ellipsis min-w-0"
                    )
                    ui.space()
                    ui.button("Restore", on_click=partial(self.restore, entry)).props(
                        "flat dense no-caps"
                    )
                    self._more(entry)
                _description(entry)

    def _row(self, entry: PersonaEntry) -> ui.card:
        card = _row_card(entry).classes("cursor-pointer")
        card.on("click", partial(self.select, entry.id))
        with card:
            with ui.row().classes("w-full items-center no-wrap gap-2"):
                ui.label(shown_text(entry.name)).classes("text-weight-medium ellipsis min-w-0")
                if entry.active:
                    ui.badge("active", color="positive").props('data-testid="active-badge"')
                ui.space()
                if not entry.active:
                    ui.button("Activate", on_click=partial(self.activate, entry)).props(
                        "flat dense no-caps"
                    ).classes("shrink-0")
                ui.button("Delete", color="negative", on_click=partial(self.delete, entry)).props(
                    "flat dense no-caps"
                ).classes("shrink-0")
                self._more(entry)
            _description(entry)
            with ui.row().classes("gap-1"):
                for tier, count in entry.tiers:
                    ui.chip(f"{tier} {count}", color=_TIER_COLORS[tier]).props(
                        f'dense outline data-tier="{tier}"'
                    )
        return card

    def _highlight(self) -> None:
        for persona_id, card in self.rows.items():
            if persona_id == self.selected:
                card.classes(_SELECTED)
            else:
                card.classes(remove=_SELECTED)

    # -- the selected persona -------------------------------------------------------

    def select(self, persona_id: str) -> None:
        """Show ``persona_id``'s settings in the form."""
        if persona_id == self.selected:
            return
        self.selected = persona_id
        self._highlight()
        self.detail.clear()
        with self.detail:
            LivePanel(
                "persona settings",
                partial(reads.detail, self.web.manager, persona_id),
                self._render_detail,
                key=reads.detail_key,
                update=self._update_detail,
            )

    def _render_detail(self, rows: list[Row]) -> None:
        self.form = None
        persona = reads.detail_persona(rows)
        if persona is None:
            _hint("This persona does not exist (any more).")
        elif persona.deleted_at is not None:
            _hint(
                f"{shown_text(persona.name)} was deleted; “Show deleted” lists it, "
                "and Restore brings it back with its memories."
            )
        else:
            self.form = PersonaForm(self.web, persona)

    def _update_detail(self, rows: list[Row]) -> bool:
        # A version saved elsewhere goes into the open form, keeping what is typed.
        persona = reads.detail_persona(rows)
        form = self.form
        return form is not None and persona is not None and form.merge(persona)

    # -- commands -------------------------------------------------------------------

    def create(self) -> None:
        """Open the dialog that creates a persona; select it once made."""
        self.dialogs.clear()
        with self.dialogs:
            create_persona(self.web, self._created)

    def _created(self, persona: Persona) -> None:
        self.select(persona.id)

    def activate(self, entry: PersonaEntry) -> None:
        """Make the persona the active one: the header and every view follow."""
        _attempt(
            lambda: self.web.services.personas.activate(entry.id),
            f"Activated {shown_text(entry.name)}",
        )

    def delete(self, entry: PersonaEntry) -> None:
        """Ask, then delete the persona with its memories (restorable)."""
        memories = entry.memory_count
        name = shown_text(entry.name)
        text = (
            f"{name} and its {memories} memories are deleted. "
            "They stay restorable: “Show deleted” lists the persona with a Restore button."
        )
        self.dialogs.clear()
        with self.dialogs:
            confirm(
                f"Delete {name}?",
                text,
                "Delete",
                lambda: _attempt(
                    lambda: self.web.services.personas.delete(entry.id), f"Deleted {name}"
                ),
            )

    def _more(self, entry: PersonaEntry) -> None:
        """The menu of a data subject's rights: a copy of the persona's data, erasure."""
        with (
            ui.button(icon="more_vert")
            .props('flat dense round data-testid="persona-more" aria-label="More"')
            .classes("shrink-0"),
            ui.menu(),
        ):
            export = ui.menu_item("Export its data (zip)", partial(self.export_subject, entry))
            export.props('data-testid="persona-export"').mark(f"persona-export-{entry.id}")
            erase = ui.menu_item("Erase for good…", partial(self.erase, entry))
            erase.props('data-testid="persona-erase"').classes("text-negative")
            erase.mark(f"persona-erase-{entry.id}")

    async def export_subject(self, entry: PersonaEntry) -> None:
        """Download everything of the persona, in plaintext, for its data subject (off
        the event loop, one at a time: :data:`~pjai.web.heavy.SUBJECT_EXPORT`)."""
        with tempfile.TemporaryDirectory() as workdir:
            path = Path(workdir) / "subject.zip"
            write = partial(export_subject, self.web.manager, entry.id, path)
            if await _heavy(self.web.subject_exports, write, self.tab, "Not exported") is None:
                return
            content = path.read_bytes()
        ui.download(content, f"{shown_text(entry.name)}-{entry.id[:8]}.zip", "application/zip")

    def erase(self, entry: PersonaEntry) -> None:
        """Ask for the persona's name, then erase it for good (off the event loop, one at
        a time: :data:`~pjai.web.heavy.ERASURE`) and show the proof."""

        async def erase() -> None:
            work = partial(erase_persona, self.web.data_dir, self.web.manager, entry.id)
            proof = await _heavy(self.web.erasures, work, self.tab, "Not erased")
            if proof is None:
                return
            if self.selected == entry.id:
                self.selected = None
                others = [persona_id for persona_id in self.rows if persona_id != entry.id]
                if others:
                    self.select(others[0])
                else:
                    self.detail.clear()
            kept = (
                f" The event log still holds {proof.plaintext_events} of its events in "
                "plaintext (written before encryption was turned on, or in a data "
                "directory that is not encrypted): destroying a key cannot reach them."
                if proof.plaintext_events
                else ""
            )
            if proof.unfinished:
                kept += (
                    f" Not finished: {'; '.join(proof.unfinished)}; finish it later with "
                    f"`pjai privacy erase {entry.id} --yes`."
                )
            ui.notify(
                f"Erased {shown_text(entry.name)}: {sum(proof.rows.values())} rows, "
                f"{len(proof.keys_destroyed)} keys destroyed.{kept}",
                type="warning" if kept else "positive",
                multi_line=True,
            )

        self.dialogs.clear()
        with self.dialogs:
            confirm_erasure(entry.name, erase)

    def restore(self, entry: PersonaEntry) -> None:
        """Bring the persona back with the memories deleted with it."""
        _attempt(
            lambda: self.web.services.personas.restore(entry.id),
            f"Restored {shown_text(entry.name)}",
        )


_TIER_COLORS = {"hot": "deep-orange", "warm": "amber-9", "cold": "light-blue-9"}


def _live_key(rows: list[Row]) -> object:
    return [e for e in reads.persona_entries(rows) if not e.deleted]


def _deleted_key(rows: list[Row]) -> object:
    return [(e.id, e.name, e.description) for e in reads.persona_entries(rows) if e.deleted]


def _row_card(entry: PersonaEntry) -> ui.card:
    card = ui.card().classes("w-full min-w-0 q-pa-sm gap-1").props("flat bordered")
    card.props('data-testid="persona-row"')
    card.props["data-persona-id"] = entry.id  # a value: never parsed as props
    return card.mark(f"persona-row persona-{entry.id}")


def _description(entry: PersonaEntry) -> None:
    if entry.description:
        # A word longer than the card breaks rather than widening the page.
        ui.label(shown_text(entry.description)).classes(
            "text-caption text-grey-7 ellipsis-2-lines wrap-anywhere"
        )


def _hint(text: str) -> None:
    ui.label(text).classes("text-grey-7 q-pa-sm")


def _attempt(command: Callable[[], object], done: str) -> None:
    try:
        command()
    except PjaiError as exc:
        ui.notify(shown_text(str(exc)), type="negative", multi_line=True)
        return
    ui.notify(done, type="positive")


async def _heavy(work: HeavyWork, job: Callable[[], T], tab: str, not_done: str) -> T | None:
    """What ``job()`` returns, run on ``work`` for ``tab``; ``None`` when it was refused
    (``not_done`` says so in a warning, with why) or failed (said in a notification)."""
    try:
        return await work.run(job, tab=tab)
    except BusyError as exc:
        ui.notify(f"{not_done}: {exc}", type="warning", multi_line=True)
    except PjaiError as exc:
        ui.notify(str(exc), type="negative", multi_line=True)
    return None


def build(web: WebApp) -> None:
    """Fill the content area with the personas view."""
    PersonasPage(web)


VIEW = View("/personas", "Personas", "face", build)
