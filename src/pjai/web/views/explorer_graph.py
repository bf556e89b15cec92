"""The relationship graph around a memory (an ECharts ``graph`` series) and the list
of its links. Both follow the memory's links live; clicking a node or a link's other
memory opens that one."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from nicegui import ui
from nicegui.events import EChartPointClickEventArguments

from pjai.app.reads import memories as reads
from pjai.store import Row
from pjai.web.app import WebApp
from pjai.web.live import LivePanel

__all__ = ["GRAPH_DEPTH", "graph_options", "link_panels"]

GRAPH_DEPTH = 2
"""How many links away from the memory the graph reaches."""

_TIER_COLOURS = {"hot": "#f4511e", "warm": "#ffa000", "cold": "#0288d1"}


def graph_options(graph: reads.Graph, center: str) -> dict[str, Any]:
    """The ECharts options drawing ``graph``: the centre memory larger and outlined,
    nodes coloured by tier, edges as thick as they are strong (their kind on hover)."""
    nodes = [
        {
            "id": node.id,
            "name": node.name,
            "value": round(node.importance, 2),
            "symbolSize": 34 if node.id == center else 14 + 16 * node.importance,
            "itemStyle": {
                "color": _TIER_COLOURS.get(node.tier, "#9e9e9e"),
                **({"borderColor": "#1a237e", "borderWidth": 3} if node.id == center else {}),
            },
            "label": {"show": True, "fontWeight": "bold" if node.id == center else "normal"},
            "category": node.tier,
        }
        for node in graph.nodes
    ]
    edges = [
        {
            "source": link.source_id,
            "target": link.target_id,
            "value": link.kind,
            "lineStyle": {"width": 1 + 3 * link.strength, "opacity": 0.4 + 0.5 * link.strength},
        }
        for link in graph.links
    ]
    return {
        "animation": False,
        "tooltip": {"formatter": "{b}"},
        "legend": {"data": ["hot", "warm", "cold"], "bottom": 0},
        "series": [
            {
                "type": "graph",
                "layout": "force",
                "roam": True,
                "draggable": True,
                # Laid out at once, not animated: the graph holds still from the start.
                "force": {"repulsion": 420, "edgeLength": [90, 160], "layoutAnimation": False},
                "categories": [
                    {"name": tier, "itemStyle": {"color": colour}}
                    for tier, colour in _TIER_COLOURS.items()
                ],
                "edgeSymbol": ["none", "arrow"],
                "edgeSymbolSize": 7,
                # Kinds show on hover: printed on every edge they cover the names.
                "edgeLabel": {"show": False, "formatter": "{c}", "fontSize": 10},
                "emphasis": {"focus": "adjacency", "edgeLabel": {"show": True}},
                "label": {"position": "right", "fontSize": 11},
                "data": nodes,
                "links": edges,
            }
        ],
    }


def link_panels(web: WebApp, memory_id: str, on_open: Callable[[str], object]) -> None:
    """The graph around ``memory_id`` and the list of its links, kept live."""
    source = partial(reads.links, web.manager, memory_id)
    LivePanel("memory graph", source, partial(_draw_graph, web, memory_id, on_open))
    LivePanel("memory links", source, partial(_list_links, memory_id, on_open))


def _draw_graph(
    web: WebApp, memory_id: str, on_open: Callable[[str], object], rows: list[Row]
) -> None:
    graph = reads.graph(web.manager, memory_id, depth=GRAPH_DEPTH)
    if len(graph.nodes) < 2:
        ui.label("No links yet: the graph shows linked memories.").classes(
            "text-grey-7 text-caption"
        )
        return

    def clicked(event: EChartPointClickEventArguments) -> None:
        picked = event.data.get("id") if isinstance(event.data, dict) else None
        if event.data_type == "node" and picked and picked != memory_id:
            on_open(picked)

    chart = ui.echart(graph_options(graph, memory_id), on_point_click=clicked)
    chart.classes("w-full h-72").props('data-testid="memory-graph"')


def _list_links(memory_id: str, on_open: Callable[[str], object], rows: list[Row]) -> None:
    ui.label(f"Links ({len(rows)})").classes("text-subtitle2")
    if not rows:
        ui.label("This memory has no links.").classes("text-grey-7 text-caption")
        return
    with ui.list().props("dense separator").classes("w-full"):
        for row in rows:
            outgoing = row.source_id == memory_id
            with ui.item(on_click=partial(on_open, row.other_id)).props("clickable"):
                with ui.item_section().props("avatar"):
                    ui.icon("arrow_forward" if outgoing else "arrow_back").tooltip(
                        "links to" if outgoing else "linked from"
                    )
                with ui.item_section():
                    ui.item_label(row.other_name).classes(
                        "line-through text-grey-6" if row.other_deleted else ""
                    )
                    ui.item_label(f"{row.kind} · strength {row.strength:.2f}").props("caption")
