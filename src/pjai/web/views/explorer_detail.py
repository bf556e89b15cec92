"""A memory's detail in the explorer: its fields, live; edit, delete and restore; its
links and the graph around it.

Opening a memory records an access (:meth:`pjai.app.Memories.open`); a deleted memory
opens without one, to be restored.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from nicegui import ui

from pjai.app.display import shown_text
from pjai.app.reads import memories as reads
from pjai.errors import NotFoundError, PjaiError
from pjai.memory.optimizer import MemoryMove
from pjai.schema.models import Memory, memory_from_row
from pjai.schema.tables import TIERS
from pjai.store import Row
from pjai.web.app import WebApp
from pjai.web.live import LivePanel
from pjai.web.views.explorer_graph import link_panels
from pjai.web.views.explorer_table import TIER_COLOURS, shown_name
from pjai.web.views.forms import form_error

__all__ = ["MemoryDetail"]


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "never"


class MemoryDetail:
    """The dialog showing one memory at a time."""

    def __init__(self, web: WebApp) -> None:
        self.web = web
        self.memory_id: str | None = None
        self.dialog = ui.dialog().props('data-testid="memory-detail"')
        with self.dialog, ui.card().classes("w-[1100px] max-w-[95vw]"):
            self._body = ui.row().classes("w-full no-wrap items-start gap-4")
        # A closed dialog's panels stop listening: deleting them unsubscribes.
        self.dialog.on_value_change(lambda event: None if event.value else self._body.clear())
        self._editor = ui.dialog()

    def open(self, memory_id: str) -> None:
        """Show a memory, recording that it was opened (unless it is deleted)."""
        try:
            self.web.services.memories.open(memory_id)
        except NotFoundError:
            self.web.services.memories.get(memory_id)  # deleted: shown, not counted
        self.memory_id = memory_id
        self._body.clear()
        with self._body:
            with ui.column().classes("w-1/2 min-w-0 gap-2"):
                LivePanel(
                    "memory", partial(reads.memory, self.web.manager, memory_id), self._fields
                )
            with ui.column().classes("w-1/2 min-w-0 gap-2"):
                ui.label("Relationships").classes("text-subtitle1 text-weight-medium")
                link_panels(self.web, memory_id, self.open)
        self.dialog.open()

    # -- the fields --------------------------------------------------------------------

    def _fields(self, rows: list[Row]) -> None:
        if not rows:
            ui.label("This memory does not exist.").classes("text-negative")
            return
        memory = memory_from_row(rows[0])
        with ui.row().classes("w-full items-center gap-2"):
            title = ui.label(shown_name(memory.name, memory.content))
            title.classes("text-h6 break-all min-w-0").props('data-testid="detail-name"')
            ui.badge(memory.tier, color=TIER_COLOURS.get(memory.tier, "grey")).props(
                'data-testid="detail-tier"'
            )
            if memory.pinned:
                ui.badge("pinned", color="grey-7")
            if memory.archived_at is not None:
                ui.badge("archived", color="blue-grey")
            if memory.deleted_at is not None:
                ui.badge("deleted", color="negative").props('data-testid="detail-deleted"')
        ui.label(shown_text(memory.content)).classes("whitespace-pre-wrap").props(
            'data-testid="detail-content"'
        )
        if memory.summary:
            ui.label(shown_text(memory.summary)).classes(
                "text-grey-8 text-caption whitespace-pre-wrap"
            )
        if memory.tags:
            with ui.row().classes("gap-1"):
                for tag in memory.tags:
                    ui.chip(shown_text(tag), icon="sell").props("dense outline")
        facts = [
            ("Type", memory.type),
            ("Importance", f"{memory.importance:.2f}"),
            ("Occurred", _when(memory.occurred_at)),
            ("Recorded", _when(memory.created_at)),
            ("Changed", _when(memory.updated_at)),
            ("Opened", _opened(memory)),
        ]
        with ui.grid(columns="auto 1fr").classes("gap-x-4 gap-y-0 text-body2"):
            for label, value in facts:
                ui.label(label).classes("text-grey-7")
                ui.label(value).props(f'data-testid="detail-{label.lower()}"')
        with ui.row().classes("gap-2 q-mt-sm"):
            if memory.deleted_at is None:
                ui.button("Edit", icon="edit", on_click=partial(self._edit, memory)).props(
                    'outline data-testid="detail-edit"'
                )
                ui.button("Delete", icon="delete", color="negative", on_click=self._delete).props(
                    'outline data-testid="detail-delete"'
                )
            else:
                ui.button("Restore", icon="restore_from_trash", on_click=self._restore).props(
                    'unelevated data-testid="detail-restore"'
                )
            ui.button("Close", on_click=self.dialog.close).props("flat")

    # -- commands ------------------------------------------------------------------------

    def _delete(self) -> None:
        assert self.memory_id is not None
        memory = self.web.services.memories.delete(self.memory_id)
        ui.notify(f"Deleted “{_in_notice(memory)}”", type="warning")

    def _restore(self) -> None:
        assert self.memory_id is not None
        try:
            memory = self.web.services.memories.restore(self.memory_id)
        except PjaiError as exc:  # a privacy rule or retention would delete it again
            ui.notify(form_error(exc), type="negative", multi_line=True)
            return
        ui.notify(f"Restored “{_in_notice(memory)}”", type="positive")

    def _edit(self, memory: Memory) -> None:
        self._editor.clear()
        with self._editor, ui.card().classes("w-[640px] max-w-[95vw] gap-2"):
            ui.label(f"Edit “{shown_text(memory.name)}”").classes("text-h6")
            name = ui.input("Name", value=memory.name).props('data-testid="edit-name"')
            name.classes("w-full")
            content = ui.textarea("Content", value=memory.content).props(
                'autogrow data-testid="edit-content"'
            )
            summary = ui.textarea("Summary", value=memory.summary).props("autogrow")
            content.classes("w-full")
            summary.classes("w-full")
            with ui.row().classes("w-full gap-3 items-center no-wrap"):
                kind = ui.input("Type", value=memory.type).props('data-testid="edit-type"')
                kind.classes("grow")
                importance = ui.number(
                    "Importance", value=memory.importance, min=0, max=1, step=0.05, format="%.2f"
                ).props('data-testid="edit-importance"')
                importance.classes("w-28")
                tier = ui.select(list(TIERS), label="Tier", value=memory.tier).props(
                    'data-testid="edit-tier"'
                )
                tier.classes("w-28").tooltip("a tier chosen here pins the memory in it")
                pinned = ui.switch("Pinned", value=memory.pinned)
            tags = ui.input_chips("Tags", value=list(memory.tags), new_value_mode="add-unique")
            tags.classes("w-full")
            fields: dict[str, Any] = {
                "name": name,
                "content": content,
                "summary": summary,
                "type": kind,
                "importance": importance,
                "tags": tags,
            }

            def save() -> None:
                changes: dict[str, Any] = {}
                for field, element in fields.items():
                    value = element.value
                    if field == "importance":
                        value = float(value) if value is not None else memory.importance
                    if field == "tags":
                        value = list(value or [])
                    if value != getattr(memory, field):
                        changes[field] = value
                moved = tier.value if tier.value != memory.tier else None
                pin = bool(pinned.value) if pinned.value != memory.pinned else None
                try:
                    done = self.web.services.memories.update(
                        memory.id, tier=moved, pinned=pin, **changes
                    )
                except PjaiError as exc:
                    labels = {field: str(e.props["label"]) for field, e in fields.items()}
                    ui.notify(form_error(exc, labels), type="negative", multi_line=True)
                    return
                self._editor.close()
                shown = _in_notice(done.memory)
                ui.notify(_saved(shown, done.changed, done.moves), type="positive")

            with ui.row().classes("w-full justify-end gap-2"):
                ui.button("Cancel", on_click=self._editor.close).props("flat")
                ui.button("Save", icon="save", on_click=save).props(
                    'unelevated data-testid="edit-save"'
                )
        self._editor.open()


def _in_notice(memory: Memory) -> str:
    """The memory's name for a notice: shown as the table shows it, cut short."""
    return shown_name(memory.name, memory.content, limit=60)[:60]


def _opened(memory: Memory) -> str:
    if not memory.access_count:
        return "never"
    times = "once" if memory.access_count == 1 else f"{memory.access_count} times"
    return f"{times}, last {_when(memory.last_accessed_at)}"


def _saved(name: str, changed: bool, moves: list[MemoryMove]) -> str:
    if not changed:
        return f"“{name}”: nothing to change"
    moved = f"; the optimizer moved {len(moves)} memories" if moves else ""
    return f"Saved “{name}”{moved}"
