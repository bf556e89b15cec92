"""The memory explorer: the active persona's memories, filtered, searched, on a
timeline, bookmarked, opened, edited, linked, and optimized.

Everything shown comes from live queries, a page at a time, so the view stays quick
with 100,000 memories and shows changes made anywhere (the CLI, another tab, a sync
client) as they happen. The parts, one module each: the selection
(``explorer_selection``), the filter bar (``explorer_filters``), bookmarks
(``explorer_bookmarks``), the timeline (``explorer_timeline``), the table
(``explorer_table``), a memory's detail and graph (``explorer_detail``,
``explorer_graph``), and the optimizer's preview (``explorer_optimize``).
"""

from __future__ import annotations

from datetime import datetime
from functools import partial

from nicegui import ui

from pjai.app.reads.personas import PersonaChoice
from pjai.errors import BusyError, PjaiError
from pjai.memory.search import omitted
from pjai.web.active import persona_page
from pjai.web.app import WebApp
from pjai.web.views.explorer_bookmarks import BookmarkBar
from pjai.web.views.explorer_detail import MemoryDetail
from pjai.web.views.explorer_filters import FilterBar
from pjai.web.views.explorer_optimize import OptimizeDialog
from pjai.web.views.explorer_selection import Selection
from pjai.web.views.explorer_table import TableFeed
from pjai.web.views.explorer_timeline import TimelineCard
from pjai.web.views.view import View

__all__ = ["SEARCH_LIMIT", "VIEW", "Explorer", "build"]

SEARCH_LIMIT = 100
"""How many hits a search shows at most, best first."""


def build(web: WebApp) -> None:
    """Fill the content area with the memory explorer of the active persona."""
    persona_page(web, "Memories", partial(_explorer, web), then="explore its memories here")


def _explorer(web: WebApp, persona: PersonaChoice) -> None:
    Explorer(web, persona.id)


class Explorer:
    """One persona's explorer: the selection, and the parts that follow it."""

    def __init__(self, web: WebApp, persona_id: str) -> None:
        self.web = web
        self.persona_id = persona_id
        self.tab = ui.context.client.id
        self.selection = Selection()
        self._searching = False  # one search at a time per tab (pjai.web.heavy)
        self.bookmarks = BookmarkBar(web, persona_id, lambda: self.selection, self.select)
        self.filters = FilterBar(web, persona_id, self.select)
        self.timeline = TimelineCard(web, persona_id, self._pick_range)
        self.detail = MemoryDetail(web)
        self.optimizer = OptimizeDialog(web, persona_id)
        with ui.row().classes("w-full items-center"):
            total = ui.row().classes("items-center")
            ui.space()
            ui.button("Optimize…", icon="auto_fix_high", on_click=self.optimizer.open).props(
                'outline no-caps data-testid="optimize"'
            )
        self.feed = TableFeed(web, total, self.detail.open)
        self._show_filter()

    async def select(self, selection: Selection) -> None:
        """Show ``selection``: the controls, the timeline and the table follow it."""
        if selection == self.selection:
            return
        before, self.selection = self.selection, selection
        self.filters.show(selection)
        if not selection.searching:
            self._show_filter()
            return
        self._show_timeline()
        if self._searching:
            # This tab's search still runs: the newest selection is searched when it ends.
            self.filters.searched(f"Searching ({selection.method})…")
            return
        await self._search_newest(before)

    async def _search_newest(self, before: Selection) -> None:
        """Search the selection, and again as long as another was asked meanwhile; if a
        search is refused, go back to ``before``, whose memories the page still shows."""
        said = self.filters.said
        self._searching = True
        try:
            while (asked := self.selection).searching:
                if not await self._search(asked, said):
                    # The same search may be asked again.
                    self.selection = before
                    self.filters.refused(before)
                    self._show_timeline()
                    return
                if self.selection is asked:
                    return
        finally:
            self._searching = False

    async def _pick_range(self, start: datetime | None, end: datetime | None) -> None:
        await self.select(self.selection.timed(start, end))

    def _show_timeline(self) -> None:
        s = self.selection
        self.timeline.show(s.where(self.persona_id, timed=False), (s.occurred_from, s.occurred_to))

    def _show_filter(self) -> None:
        self.filters.searched("")
        self._show_timeline()
        self.feed.show_filter(self.selection.where(self.persona_id))

    async def _search(self, asked: Selection, said: tuple[str, bool]) -> bool:
        """Search as ``asked`` and show the hits; ``False`` if the search was refused
        (every search thread is busy), the search line saying ``said`` again."""
        where = asked.where(self.persona_id)
        self.filters.searched(f"Searching ({asked.method})…")
        search = partial(
            self.web.services.memories.search,
            asked.text,
            where,
            limit=SEARCH_LIMIT,
            method=asked.method,
        )
        try:
            hits = await self.web.searches.run(search, tab=self.tab)
        except BusyError as exc:
            message, error = said
            self.filters.searched(message, error=error)
            ui.notify(f"Not searched: {exc}", type="warning", multi_line=True)
            return False
        except PjaiError as exc:
            if self.selection is asked:
                self.filters.searched(f"{asked.method} search failed: {exc}", error=True)
                self.feed.show_filter(where)
            return True
        if self.selection is not asked:
            return True  # the user asked for something else meanwhile
        best = f" (the best {SEARCH_LIMIT})" if len(hits) == SEARCH_LIMIT else ""
        left_out = omitted(asked.method, where)
        note = f"; {left_out}" if left_out else ""
        self.filters.searched(
            f"{len(hits)} found{best} by {asked.method} search for “{asked.text}”{note}"
        )
        # A search finds deleted memories when the filter lets them in ("Deleted too").
        self.feed.show_hits([h.memory_id for h in hits], deleted=where.include_deleted)
        return True


VIEW = View("/memories", "Memories", "psychology", build)
