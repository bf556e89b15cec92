"""What a paged table may be asked for, and what a new total does to its page."""

from __future__ import annotations

from typing import Any

import pytest

from pjai.web.paging import MAX_PAGE, ROWS_PER_PAGE, asked_page, settle_total, window


@pytest.mark.parametrize(
    ("asked", "read"),
    [
        ({"page": 3, "rowsPerPage": 50}, {"page": 3, "rowsPerPage": 50}),
        ({"page": -2, "rowsPerPage": 0}, {"page": 1, "rowsPerPage": ROWS_PER_PAGE}),
        ({"page": "7", "rowsPerPage": 10**9}, {"page": 1, "rowsPerPage": ROWS_PER_PAGE}),
        ({}, {"page": 1, "rowsPerPage": ROWS_PER_PAGE}),
        # Past SQL's integers: a page far beyond any table's last.
        ({"page": 10**19, "rowsPerPage": 10}, {"page": MAX_PAGE, "rowsPerPage": 10}),
    ],
)
def test_a_request_asks_only_for_real_pages_of_offered_sizes(
    asked: dict[str, Any], read: dict[str, int]
) -> None:
    assert asked_page(asked) == read


class Table:
    """Stands for a ui.table: the helpers read and write its pagination only."""

    def __init__(self, **pagination: int) -> None:
        self.pagination: dict[str, Any] = pagination


def test_a_page_covers_its_window() -> None:
    assert window(Table(page=3, rowsPerPage=25)) == (25, 50)  # type: ignore[arg-type]


def test_a_total_that_empties_the_last_page_moves_back_to_the_new_last() -> None:
    table = Table(page=4, rowsPerPage=10, rowsNumber=40)
    assert settle_total(table, 40) is False  # type: ignore[arg-type]
    assert settle_total(table, 35) is False  # type: ignore[arg-type]
    assert settle_total(table, 29) is True  # type: ignore[arg-type]
    assert table.pagination == {"page": 3, "rowsPerPage": 10, "rowsNumber": 29}
    assert settle_total(table, 0) is True  # type: ignore[arg-type]
    assert table.pagination["page"] == 1
