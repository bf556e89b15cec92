"""The audit trail's filter bar: persona, event type, time range, client, outcome and a
text search over the payloads. Each change hands a new
:class:`~pjai.app.reads.audit.AuditFilter` to the view."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from nicegui import ui

from pjai.app.display import shown_text
from pjai.app.reads import audit as reads
from pjai.app.reads.audit import OUTCOMES, AuditFilter
from pjai.schema.records import EventStatus
from pjai.web.app import WebApp
from pjai.web.views.time_field import read_time, time_field

__all__ = ["AuditFilters"]


class AuditFilters:
    """The controls of the audit trail's filter; ``apply`` gets each new filter."""

    def __init__(self, web: WebApp, apply: Callable[[AuditFilter], object]) -> None:
        self.web = web
        self._apply = apply
        self._shown = AuditFilter()
        self._quiet = False
        with ui.card().classes("w-full gap-2").props("flat bordered"):
            with ui.row().classes("w-full items-center gap-2 no-wrap"):
                self.text = self._input(
                    "audit-search", placeholder="Search payloads: a word, a name, an id"
                ).classes("grow")
                self.text.on("keydown.enter", self._changed)
                self.text.on("clear", self._changed)
                ui.button("Search", icon="search", on_click=self._changed).props(
                    'unelevated data-testid="audit-search-button"'
                )
            with ui.row().classes("w-full items-center gap-3"):
                self.persona = self._select("Persona", {}, "audit-persona", with_input=True)
                self.persona.on("popup-show", self._personas_known)
                self.names = self._select(
                    "Event types", web.manager.schema.event_names, "audit-type", multiple=True
                ).classes("min-w-[14rem]")
                self.client = self._select("Client", [], "audit-client")
                self.client.on("popup-show", self._clients_known)
                self.outcomes = self._select(
                    "Outcome", list(OUTCOMES), "audit-outcome", multiple=True
                )
            with ui.row().classes("w-full items-center gap-3"):
                self.since = time_field("From (UTC)", "audit-from", self._changed)
                self.until = time_field("To (UTC)", "audit-to", self._changed)
                ui.space()
                ui.button("Clear", icon="filter_alt_off", on_click=self._clear).props(
                    'flat dense no-caps data-testid="audit-clear"'
                )
        self._personas_known()
        self._clients_known()

    # -- building ----------------------------------------------------------------------

    def _input(self, testid: str, label: str | None = None, **options: Any) -> ui.input:
        field = ui.input(label, **options).props(f'dense outlined clearable data-testid="{testid}"')
        return field.mark(testid)

    def _select(
        self,
        label: str,
        options: list[str] | dict[str, str],
        testid: str,
        *,
        multiple: bool = False,
        with_input: bool = False,
    ) -> ui.select:
        field = ui.select(
            options,
            label=label,
            multiple=multiple,
            with_input=with_input,
            clearable=True,
            on_change=self._changed,
        )
        chips = " use-chips" if multiple else ""
        field.props(f'dense outlined{chips} data-testid="{testid}"').classes("min-w-[11rem]")
        return field.mark(testid)

    def _personas_known(self) -> None:
        chosen = self.persona.value
        names = {
            persona_id: shown_text(name)
            for persona_id, name in reads.persona_names(self.web.manager).items()
        }
        if chosen and chosen not in names:
            names[chosen] = chosen
        self.persona.set_options(names, value=chosen)

    def _clients_known(self) -> None:
        chosen = self.client.value
        known = set(reads.client_ids(self.web.manager)) | ({chosen} if chosen else set())
        self.client.set_options(sorted(known), value=chosen)

    # -- reading the controls ----------------------------------------------------------

    def read(self) -> AuditFilter:
        """The filter the controls show now (a wrong time is an error on its input)."""
        return AuditFilter(
            persona_id=self.persona.value or None,
            names=tuple(self.names.value or ()),
            since=read_time(self.since, end=False, fallback=self._shown.since),
            until=read_time(self.until, end=True, fallback=self._shown.until),
            client_id=self.client.value or None,
            outcomes=cast(tuple[EventStatus, ...], tuple(self.outcomes.value or ())),
            text=(self.text.value or "").strip(),
        )

    def _changed(self, *_: object) -> None:
        if self._quiet:
            return
        where = self.read()
        if where != self._shown:
            self._shown = where
            self._apply(where)

    def _clear(self) -> None:
        self._quiet = True  # one new filter for the lot, not one per control
        for field in (self.text, self.since, self.until):
            field.value = ""
        for choice in (self.persona, self.client):
            choice.value = None
        for many in (self.names, self.outcomes):
            many.value = []
        self._quiet = False
        self._changed()
