"""The explorer's timeline: how many memories the filter selects per hour, day, week or
month, as a bar chart. Clicking a bar, or brushing across several, narrows the table
to that time; the bars inside the chosen range stand out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any, cast

from nicegui import ui
from nicegui.events import EChartPointClickEventArguments, GenericEventArguments

from pjai.app.reads import memories as reads
from pjai.memory.timeline import UNITS, Bucket, Unit, timeline_from_rows
from pjai.schema.selection import MemoryFilter
from pjai.store import Row
from pjai.web.app import WebApp
from pjai.web.live import LivePanel

__all__ = ["TimelineCard", "bucket_range"]

PickRange = Callable[[datetime | None, datetime | None], Awaitable[None]]

_LAST_INSTANT = timedelta(microseconds=1)
_CHOSEN, _OTHER, _PLAIN = "#3949ab", "#c5cae9", "#5c6bc0"


def bucket_range(key: str, unit: Unit) -> tuple[datetime, datetime]:
    """The first and last instant of a timeline bucket (keys as the timeline makes them:
    ``2026-01-31T23:00``, ``2026-01-31``, ``2026-W05``, ``2026-01``)."""
    if unit == "hour":
        start = datetime.fromisoformat(key).replace(tzinfo=UTC)
        after = start + timedelta(hours=1)
    elif unit == "day":
        start = datetime.fromisoformat(key).replace(tzinfo=UTC)
        after = start + timedelta(days=1)
    elif unit == "week":
        iso_year, iso_week = key.split("-W")
        monday = date.fromisocalendar(int(iso_year), int(iso_week), 1)
        start = datetime(monday.year, monday.month, monday.day, tzinfo=UTC)
        after = start + timedelta(days=7)
    else:
        year, month = (int(part) for part in key.split("-"))
        start = datetime(year, month, 1, tzinfo=UTC)
        after = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return start, after - _LAST_INSTANT


class TimelineCard:
    """The timeline of the memories a filter selects; ``pick(start, end)`` gets the range
    the user chose (``None, None`` to drop it)."""

    def __init__(self, web: WebApp, persona_id: str, pick: PickRange) -> None:
        self.web = web
        self.persona_id = persona_id
        self._pick = pick
        self._where: MemoryFilter | None = None
        self._range: tuple[datetime | None, datetime | None] = (None, None)
        self._buckets: list[Bucket] = []
        with ui.card().classes("w-full gap-1").props('flat bordered data-testid="timeline"'):
            with ui.row().classes("w-full items-center gap-2"):
                ui.label("Timeline").classes("text-subtitle1 text-weight-medium")
                self.unit = ui.toggle(
                    list(UNITS), value="day", on_change=lambda: self._feed()
                ).props('dense no-caps data-testid="timeline-unit"')
                ui.label("click a bar, or brush across bars, to show that time").classes(
                    "text-caption text-grey-7"
                )
                # Feeds the chart; shows only its loading state or its error, up here.
                self._feeder = ui.element("div")
                ui.space()
                self.clear_range = ui.button(
                    "All time", icon="close", on_click=lambda: self._pick(None, None)
                ).props('flat dense no-caps data-testid="timeline-all"')
                self.clear_range.set_visibility(False)
            self.chart = ui.echart(self._options([])).classes("w-full h-44")
            self.chart.props('data-testid="timeline-chart"')
            self.chart.on_point_click(self._clicked)
            self.chart.on("chart:brushEnd", self._brushed)

    def show(self, where: MemoryFilter, chosen: tuple[datetime | None, datetime | None]) -> None:
        """Show the timeline of ``where`` (its time range aside) with ``chosen`` marked."""
        self._range = chosen
        self.clear_range.set_visibility(chosen != (None, None))
        if where != self._where:
            self._where = where
            self._feed()
        else:
            self._draw()

    @property
    def unit_value(self) -> Unit:
        """The bucket size shown."""
        return cast(Unit, self.unit.value)

    def _feed(self) -> None:
        if self._where is None:
            return
        self._feeder.clear()
        with self._feeder:
            source = partial(
                reads.timeline, self.web.manager, self.persona_id, self.unit_value, self._where
            )
            LivePanel("timeline", source, self._arrived).classes(remove="w-full")

    def _arrived(self, rows: list[Row]) -> None:
        self._buckets = timeline_from_rows(rows, self.unit_value)
        self._draw()

    def _draw(self) -> None:
        self.chart.options.clear()
        self.chart.options.update(self._options(self._buckets))
        self.chart.update()

    def _chosen(self, bucket: Bucket) -> bool:
        low, high = self._range
        start, end = bucket_range(bucket.key, self.unit_value)
        return (low is None or end >= low) and (high is None or start <= high)

    def _options(self, buckets: list[Bucket]) -> dict[str, Any]:
        ranged = self._range != (None, None)
        data = [
            {
                "value": b.memories,
                "itemStyle": {
                    "color": (_CHOSEN if self._chosen(b) else _OTHER) if ranged else _PLAIN
                },
            }
            for b in buckets
        ]
        empty = {
            "text": "No memories match",
            "left": "center",
            "top": "middle",
            "textStyle": {"color": "#9e9e9e", "fontSize": 13, "fontWeight": "normal"},
        }
        return {
            "animation": False,
            "title": empty if not buckets else {"show": False},
            "grid": {"left": 40, "right": 16, "top": 28, "bottom": 24},
            "tooltip": {"trigger": "axis"},
            "toolbox": {
                "feature": {
                    "brush": {
                        "type": ["lineX", "clear"],
                        "title": {"lineX": "Brush a time range", "clear": "Clear the brush"},
                    }
                },
                "right": 8,
                "top": 0,
            },
            # The chosen bars are coloured here; the brush's own colouring would fight it.
            "brush": {
                "xAxisIndex": 0,
                "brushType": "lineX",
                "throttleType": "debounce",
                "outOfBrush": {"colorAlpha": 1},
            },
            "xAxis": {"type": "category", "data": [b.key for b in buckets]},
            "yAxis": {"type": "value", "minInterval": 1},
            "series": [{"type": "bar", "name": "memories", "data": data, "barMaxWidth": 28}],
        }

    async def _clicked(self, event: EChartPointClickEventArguments) -> None:
        start, end = bucket_range(str(event.name), self.unit_value)
        await self._pick(start, end)

    async def _brushed(self, event: GenericEventArguments) -> None:
        areas = event.args.get("areas") or []
        if not areas or not self._buckets:
            return
        low, high = (int(i) for i in areas[0]["coordRange"])
        last = len(self._buckets) - 1
        low, high = max(0, min(low, last)), max(0, min(high, last))
        start, _ = bucket_range(self._buckets[low].key, self.unit_value)
        _, end = bucket_range(self._buckets[high].key, self.unit_value)
        # The chosen bars stand out on their own; the brushed area would stay behind.
        self.chart.run_chart_method("dispatchAction", {"type": "brush", "areas": []})
        await self._pick(start, end)
