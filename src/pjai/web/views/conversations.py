"""The conversations view: the active persona's conversations (live), one of them as a
chat, a form to start another, and turning one into memories.

The list and the chat follow commits from anywhere (another tab, the CLI, a sync
client); switching the active persona shows that persona's conversations.
"""

from __future__ import annotations

from functools import partial

from nicegui import ui

from pjai.app.display import shown_text
from pjai.app.reads import conversations as reads
from pjai.app.reads.personas import PersonaChoice
from pjai.errors import PjaiError
from pjai.store import Row
from pjai.web.active import persona_page
from pjai.web.app import WebApp
from pjai.web.live import LivePanel
from pjai.web.views.conversation_chat import ConversationChat
from pjai.web.views.conversation_rows import KeyedRows, when
from pjai.web.views.forms import field_error
from pjai.web.views.view import View

__all__ = ["VIEW", "ConversationRow", "Conversations", "build"]


def build(web: WebApp) -> None:
    """Fill the content area with the conversations view of the active persona."""
    persona_page(
        web, "Conversations", partial(Conversations, web), then="its conversations show here"
    )


class ConversationRow(ui.item):
    """A conversation in the list: its title and how many messages it has."""

    def __init__(self, row: Row) -> None:
        super().__init__()
        self.props('clickable data-testid="conversation-row" active-class="bg-indigo-1"')
        self.props["data-conversation"] = row.id
        self.mark("conversation-row")
        with self, ui.item_section():
            self.title = ui.item_label("")
            self.title.classes("ellipsis text-weight-medium")
            self.figures = ui.item_label("").props("caption")
        self.show(row)

    def show(self, row: Row) -> None:
        """Show the row's current title and figures."""
        self.title.text = shown_text(row.title or "") or "Untitled conversation"
        said = f"{row.message_count} message{'' if row.message_count == 1 else 's'}"
        self.figures.text = f"{said} · {when(row.started_at)}"


class Conversations(ui.row):
    """A persona's conversations beside the one that is open.

    The newest conversation opens when the list first shows one; clicking a row opens
    another; a conversation started here opens at once.
    """

    def __init__(self, web: WebApp, persona: PersonaChoice) -> None:
        super().__init__()
        self.classes("w-full items-start gap-4")
        self.web = web
        self.persona = persona
        self.open_id: str | None = None
        """The conversation shown as a chat."""
        with self:
            side = ui.column().classes("w-80 shrink-0 gap-3")
            # Before the list: its first result may open a conversation at once.
            self._chat = ui.column().classes("grow basis-[26rem] min-w-0")
        with side:
            self._start_form()
            with ui.card().classes("w-full q-pa-none gap-0"):
                self._rows = KeyedRows(
                    ui.list().classes("w-full").props("separator"),
                    self._row,
                    ConversationRow.show,
                )
                LivePanel(
                    "conversations",
                    partial(reads.listing, web.manager, persona.id),
                    self._show_list,
                )
        if self.open_id is None:
            self._show_chat()

    def open(self, conversation_id: str) -> None:
        """Show a conversation as a chat."""
        if conversation_id == self.open_id:
            return
        self.open_id = conversation_id
        for key, element in self._rows.elements.items():
            if key == conversation_id:
                element.props("active")
            else:
                element.props(remove="active")
        self._show_chat()

    def _row(self, row: Row) -> ConversationRow:
        item = ConversationRow(row)
        item.on_click(lambda: self.open(row.id))
        if row.id == self.open_id:
            item.props("active")
        return item

    def _show_list(self, rows: list[Row]) -> None:
        self._rows.show(rows)
        if not rows:
            ui.label("No conversation yet: start one above.").classes("text-grey-7 q-pa-md").props(
                'data-testid="no-conversation"'
            )
        elif self.open_id is None:
            self.open(rows[0].id)
        if len(rows) >= reads.LIST_LIMIT:
            ui.label(f"The latest {reads.LIST_LIMIT} started are listed.").classes(
                "text-caption text-grey-7 q-pa-sm"
            )

    def _show_chat(self) -> None:
        self._chat.clear()
        with self._chat:
            if self.open_id is None:
                ui.label(
                    f"Start a conversation with {shown_text(self.persona.name)}, "
                    "or pick one on the left."
                ).classes("text-grey-7 q-pa-md")
            else:
                ConversationChat(self.web, self.persona, self.open_id)

    def _start_form(self) -> None:
        with ui.card().classes("w-full").props('data-testid="start"'):
            ui.label(f"New conversation with {shown_text(self.persona.name)}").classes(
                "text-subtitle1"
            )
            title = (
                ui.input("Title (optional)")
                .classes("w-full")
                .props('dense outlined data-testid="conversation-title-input"')
            )
            title.mark("conversation-title-input")

            def start() -> None:
                if not button.enabled:  # Enter, or a click, just after a start
                    return
                try:
                    made = self.web.services.conversations.start(
                        self.persona.id, title=str(title.value or "").strip()
                    )
                except PjaiError as exc:
                    title.error = field_error(exc, "title")
                    return
                title.error = None
                title.value = ""
                # A second click queued already (a double click) starts nothing: the
                # server ignores a disabled button's events.
                button.disable()
                ui.timer(REPEAT_GUARD_S, button.enable, once=True)
                self.open(made)

            title.on("keydown.enter", start)
            button = ui.button("Start", icon="add_comment", on_click=start)
            button.props('data-testid="start-conversation"').mark("start-conversation")


REPEAT_GUARD_S = 0.5
"""How long after a start the Start button ignores clicks (a double click is one)."""

VIEW = View("/conversations", "Conversations", "forum", build)
