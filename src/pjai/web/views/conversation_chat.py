"""One conversation as a chat: its header, its messages (live), and the form that adds
one."""

from __future__ import annotations

from functools import partial

from nicegui import ui

from pjai.app.display import shown_text
from pjai.app.reads import conversations as reads
from pjai.app.reads.personas import PersonaChoice
from pjai.errors import PjaiError
from pjai.schema.conversations import MESSAGE_ROLES
from pjai.store import Row
from pjai.web.app import WebApp
from pjai.web.live import LivePanel
from pjai.web.views.conversation_ingest import IngestForm, show_made
from pjai.web.views.conversation_rows import KeyedRows, when
from pjai.web.views.forms import field_error

__all__ = ["ConversationChat"]

_LOOKS = {
    "user": ("indigo-1", "grey-10"),
    "assistant": ("grey-3", "grey-10"),
}
_OTHER_LOOK = ("amber-1", "grey-9")


class ConversationChat(ui.column):
    """A conversation of ``persona``: title and figures, the ingest form, the messages in
    the order they were sent (new ones appear as they are committed, from anywhere), and
    a form to add one as the user or as the persona."""

    def __init__(self, web: WebApp, persona: PersonaChoice, conversation_id: str) -> None:
        super().__init__()
        self.classes("w-full gap-3")
        self.props["data-conversation"] = conversation_id
        self.web = web
        self.persona = persona
        self.conversation_id = conversation_id
        with self, ui.card().classes("w-full gap-2"):
            header = ui.row().classes("w-full items-start justify-between gap-x-4 gap-y-2")
            made = ui.row().classes("w-full items-center gap-2 text-body2")
        with header, ui.column().classes("grow basis-48 min-w-0 gap-1"):
            LivePanel(
                "conversation",
                partial(reads.conversation, web.manager, conversation_id),
                self._header,
            ).classes("gap-0")
            LivePanel(
                "memories made",
                partial(reads.memories_made, web.manager, conversation_id),
                show_made,
            )
        with header:
            IngestForm(web, conversation_id, made)
        with self, ui.card().classes("w-full q-pa-none"):
            # Reversed flex keeps the view at the newest message while the user is there.
            scroller = ui.element("div").classes(
                "w-full max-h-[60vh] overflow-y-auto flex flex-col-reverse q-pa-md"
            )
            with scroller, ui.column().classes("w-full gap-1"):
                self._messages = KeyedRows(ui.column().classes("w-full gap-1"), self._message)
                LivePanel(
                    "messages",
                    partial(reads.messages, web.manager, conversation_id),
                    self._show_messages,
                )
        with self:
            self._compose()

    def _header(self, rows: list[Row]) -> None:
        if not rows:
            ui.label("This conversation is not there (any more).").classes("text-grey-7")
            return
        row = rows[0]
        title = ui.label(shown_text(row.title or "") or "Untitled conversation")
        title.classes("text-h6 ellipsis")
        title.props('data-testid="conversation-title"')
        said = f"{row.message_count} message{'' if row.message_count == 1 else 's'}"
        figures = f"{said} · started {when(row.started_at)}"
        if row.message_count > reads.MESSAGE_WINDOW:
            figures += f" · the latest {reads.MESSAGE_WINDOW} shown"
        ui.label(figures).classes("text-caption text-grey-7")

    def _show_messages(self, rows: list[Row]) -> None:
        self._messages.show(reads.in_order(rows))
        if not rows:
            ui.label("No message yet: write the first one below.").classes(
                "text-grey-7 q-pa-md self-center"
            ).props('data-testid="no-message"')

    def _message(self, row: Row) -> ui.chat_message:
        role = str(row.role)
        background, text = _LOOKS.get(role, _OTHER_LOOK)
        message = ui.chat_message(
            shown_text(str(row.content)),
            name=self._speaker(role),
            stamp=when(row.sent_at),
            sent=role == "user",
        )
        message.props(f'bg-color="{background}" text-color="{text}" data-testid="message"')
        # Set as a value: imported chats name senders freely (quotes, spaces).
        message.props["data-role"] = role
        message.mark("message")
        if role == "user":
            message.classes("self-end")
        return message

    def _speaker(self, role: str) -> str:
        if role == "assistant":
            return shown_text(self.persona.name)
        return role.capitalize() if role in MESSAGE_ROLES else shown_text(role)

    def _compose(self) -> None:
        with ui.card().classes("w-full").props('data-testid="compose"'):
            with ui.row().classes("w-full items-center gap-3"):
                ui.label("Say as").classes("text-grey-8")
                speakers = {"user": "User", "assistant": shown_text(self.persona.name)}
                role = ui.toggle(speakers, value="user")
                role.props('no-caps dense data-testid="say-as"').mark("say-as")
            text = ui.textarea(placeholder="Write a message… (Ctrl+Enter sends)")
            text.classes("w-full").props('autogrow outlined data-testid="message-text"')
            text.mark("message-text")

            def send() -> None:
                said = str(text.value or "")
                try:
                    self.web.services.conversations.say(self.conversation_id, str(role.value), said)
                except PjaiError as exc:
                    text.error = (
                        "The message is empty: write something first."
                        if not said.strip()
                        else field_error(exc, "content")
                    )
                    return
                text.error = None
                text.value = ""

            text.on("keydown.ctrl.enter", send)
            with ui.row().classes("w-full justify-end"):
                ui.button("Send", icon="send", on_click=send).props('data-testid="send"').mark(
                    "send"
                )
