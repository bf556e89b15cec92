"""The devtools SQL console: read-only SQL on the store's state, timed, rows capped."""

from __future__ import annotations

from functools import partial
from typing import Any

from nicegui import ui

from pjai.app.display import shown_text
from pjai.app.reads import devtools as reads
from pjai.store import Row
from pjai.web.app import WebApp
from pjai.web.live import failure_text

__all__ = ["console", "shown", "table_of"]

_EXAMPLE = "SELECT id, name, is_active FROM personas ORDER BY name"
_CELL = 80
"""Cells show at most this many characters, so that a row stays a line or two high."""


def table_of(columns: list[str], rows: list[Row], *, testid: str | None = None) -> ui.table:
    """A dense table of ``rows`` under ``columns`` (values shown as text)."""
    names = [f"c{i}" for i in range(len(columns))]
    table = (
        ui.table(
            columns=[
                {"name": n, "label": c, "field": n, "align": "left"}
                for n, c in zip(names, columns, strict=True)
            ],
            rows=[_cells(names, row, i) for i, row in enumerate(rows)],
            row_key="_row",
            pagination=0,
        )
        .classes("w-full")
        .props("dense flat bordered")
    )
    if testid:
        table.props(f'data-testid="{testid}"')
    return table


def _cells(names: list[str], row: Row, index: int) -> dict[str, Any]:
    cells: dict[str, Any] = {"_row": index}
    for name, value in zip(names, row, strict=True):
        cells[name] = shown(value, _CELL)
    return cells


def shown(value: Any, limit: int) -> str:
    """A stored value as the devtools show it: ``∅`` for NULL, direction overrides as
    marks (:func:`~pjai.app.display.shown_text`), cut at ``limit`` characters."""
    text = "∅" if value is None else shown_text(str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def console(web: WebApp) -> None:
    """A query box, a Run button, and the result: timing and rows, or the error."""
    with ui.column().classes("w-full gap-2"):
        ui.label(
            f"Read-only SQL on the store's state; at most {reads.SQL_ROW_CAP} rows are shown."
        ).classes("text-caption text-grey-7")
        sql = (
            ui.textarea("SQL", value=_EXAMPLE)
            .classes("w-full font-mono")
            .props('outlined autogrow data-testid="sql-console"')
            .mark("sql-console")
        )
        button = ui.button("Run", icon="play_arrow").props('data-testid="sql-run"').mark("sql-run")
        result = (
            ui.column().classes("w-full gap-1").props('data-testid="sql-result"').mark("sql-result")
        )

    tab = ui.context.client.id  # one query at a time, across visits to the console

    async def run() -> None:
        button.disable()
        try:
            query = partial(reads.run_sql, web.manager, str(sql.value or ""))
            found = await web.console.run(query, tab=tab)
        except Exception as exc:
            if result.is_deleted:
                return
            result.clear()
            with result:
                ui.label(failure_text(exc)).classes("text-negative").props(
                    'data-testid="sql-error"'
                ).mark("sql-error")
            return
        finally:
            button.enable()
        if result.is_deleted:
            return
        result.clear()
        with result:
            shown = f"{len(found.rows)} row{'s' if len(found.rows) != 1 else ''}"
            more = f" (more rows: only the first {reads.SQL_ROW_CAP} are shown)"
            ui.label(
                f"{shown} in {found.seconds * 1000:.1f} ms{more if found.capped else ''}"
            ).classes("text-caption text-grey-8")
            if found.columns:
                table_of(found.columns, found.rows)

    button.on_click(run)
