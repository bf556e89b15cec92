"""Turning a conversation into memories from the conversations view, and saying what was
made.

A long conversation takes long to turn into memories: it runs on threads of its own
(:mod:`pjai.web.heavy`), one run at a time across all tabs, so that every other page goes
on meanwhile; another is refused at once and says why."""

from __future__ import annotations

from functools import partial

from nicegui import ui

from pjai.errors import BusyError, EventError, PjaiError
from pjai.memory import Ingested
from pjai.store import Row
from pjai.web.app import WebApp

__all__ = ["IngestForm", "ingested_text", "made_text", "show_made"]

MEMORIES_PATH = "/memories"
"""Where the memories a conversation became can be seen."""


def _memories(count: int) -> str:
    return f"{count} memor{'y' if count == 1 else 'ies'}"


def ingested_text(done: Ingested) -> str:
    """What an ingest did, in a sentence."""
    if done.added == 0 and done.skipped == 0 and not done.refused:
        return "No message to make memories of yet."
    if done.added == 0 and not done.refused:
        return f"Nothing new: every message is a memory already ({_memories(done.skipped)})."
    text = f"Made {_memories(done.added)} from this conversation"
    if done.skipped:
        were = (
            "1 message already was"
            if done.skipped == 1
            else f"{done.skipped} messages already were"
        )
        text += f" ({were})"
    text += "."
    if done.refused:
        first, count = done.refused[0], len(done.refused)
        why = f"{first.message_id}: {first.reason}"
        if count == 1:
            text += f" A message could not become a memory ({why})."
        else:
            text += f" {count} messages could not become memories (the first, {why})."
    if done.moves:
        text += f" The optimizer then moved {_memories(len(done.moves))} between tiers."
    return text


def made_text(messages: int, made: int) -> str:
    """How many of a conversation's messages are memories, in a sentence ("" for a
    conversation without messages)."""
    if messages == 0:
        return ""
    if made == 0:
        return "No message is a memory yet."
    if made == messages:
        return "Every message is a memory."
    return f"{made} of {messages} messages are memories."


def show_made(rows: list[Row]) -> None:
    """Render the row of :func:`pjai.app.reads.conversations.memories_made`."""
    text = made_text(int(rows[0].messages), int(rows[0].made)) if rows else ""
    if text:
        with ui.row().classes("items-center gap-1 text-caption text-grey-8"):
            ui.icon("psychology", size="xs")
            ui.label(text).props('data-testid="memories-made"')


class IngestForm(ui.row):
    """Importance and a button that turns the conversation's messages into memories of
    its persona (each message once); ``made`` says what the last run made, with a link
    to the memories view."""

    def __init__(self, web: WebApp, conversation_id: str, made: ui.element) -> None:
        super().__init__()
        self.classes("items-center no-wrap gap-2 shrink-0").props('data-testid="ingest"')
        self.web = web
        self.conversation_id = conversation_id
        self.tab = ui.context.client.id
        self.result = made.props('data-testid="ingested"')
        self.result.set_visibility(False)
        with self:
            self.importance = ui.number(
                "Importance", value=0.5, min=0, max=1, step=0.1, format="%.1f"
            )
            self.importance.classes("w-28").props('dense outlined data-testid="importance"').mark(
                "importance"
            )
            ui.button("Make memories", icon="psychology", on_click=self.ingest).props(
                'data-testid="make-memories"'
            ).mark("make-memories")

    async def ingest(self) -> None:
        """Make the memories and say what was made."""
        importance = self.importance.value
        if importance is None:
            self.importance.error = "Give an importance from 0 to 1."
            return
        run = partial(
            self.web.services.memories.ingest, self.conversation_id, importance=float(importance)
        )
        try:
            done = await self.web.ingests.run(run, tab=self.tab)
        except BusyError as exc:
            ui.notify(f"No memories made: {exc}", type="warning", multi_line=True)
            return
        except PjaiError as exc:
            self.importance.error = exc.reason if isinstance(exc, EventError) else str(exc)
            return
        self.importance.error = None
        self.result.clear()
        self.result.set_visibility(True)
        with self.result:
            if done.added:
                ui.icon("check_circle", color="positive")
            else:
                ui.icon("info", color="grey-7")
            ui.label(ingested_text(done))
            if done.added or done.skipped:
                ui.link("See them in Memories", MEMORIES_PATH)
