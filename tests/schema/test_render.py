"""Ops rendered as SQL: values stored as each flavor stores them, unknown names refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pjai.schema.ops import Compress, Decayed, Delete, Insert, Op, Update
from pjai.schema.render import SQLITE, BadOp, OpRenderer
from pjai.schema.tables import metadata
from pjai.sql.postgresql import POSTGRESQL

AT = datetime(2026, 1, 31, 23, 0, tzinfo=UTC)


def test_sqlite_stores_times_as_text_json_as_text_and_booleans_as_numbers() -> None:
    render = OpRenderer(metadata, SQLITE).render
    sql, params = render(
        Update("memories", {"id": "m1", "deleted_at": None}, {"tags": ["a"], "pinned": True})
    )
    assert sql == (
        'UPDATE "memories" SET "tags" = ?, "pinned" = ? WHERE "id" = ? AND "deleted_at" IS NULL'
    )
    assert params == ['["a"]', 1, "m1"]
    _, params = render(Update("memories", {"updated_at": AT}, {}))
    assert params == ["2026-01-31T23:00:00.000000+00:00"]


def test_postgresql_keeps_booleans_and_times_in_utc() -> None:
    _, params = OpRenderer(metadata, POSTGRESQL).render(
        Update("memories", {"updated_at": AT}, {"pinned": True})
    )
    assert params == [True, AT]


@pytest.mark.parametrize(
    ("op", "message"),
    [
        (Insert("nowhere", {"id": "x"}), "op names unknown table 'nowhere'"),
        (Insert("memories", {"colour": "x"}), "op names unknown column memories.colour"),
        (Update("memories", {"id": "m"}, {"colour": "x"}), "unknown column memories.colour"),
        (Update("memories", {"id": "m"}, {"colour": Compress()}), "unknown column memories.colour"),
        (Update("memories", {"colour": None}, {}), "unknown column memories.colour"),
        (Delete("memories", {"colour": "x"}), "unknown column memories.colour"),
        (
            Update("memory_links", {}, {"strength": Decayed("rate", 1.0)}),
            "unknown column memory_links.rate",
        ),
    ],
)
def test_an_op_naming_what_the_schema_lacks_is_refused(op: Op, message: str) -> None:
    with pytest.raises(BadOp, match=message):
        OpRenderer(metadata, SQLITE).render(op)
