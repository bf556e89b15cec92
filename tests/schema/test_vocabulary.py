"""Tier names and link kinds: one Literal each, and every other list derived from it."""

from __future__ import annotations

from typing import Any, get_args

import msgspec
import pytest
from sqlalchemy import CheckConstraint, Table

from pjai.errors import EventValidationError
from pjai.schema import LINK_KINDS, SCHEMA, TIERS, MemoryAdded, MemoryLinked, memories, memory_links
from pjai.schema.fields import LinkKind, Tier


@pytest.mark.parametrize(
    ("names", "literal", "table", "column"),
    [(TIERS, Tier, memories, "tier"), (LINK_KINDS, LinkKind, memory_links, "kind")],
)
def test_the_table_allows_exactly_the_literal(
    names: tuple[str, ...], literal: Any, table: Table, column: str
) -> None:
    assert names == get_args(literal)
    (check,) = [
        c
        for c in table.constraints
        if isinstance(c, CheckConstraint) and c.name == f"ck_{table.name}_{column}"
    ]
    quoted = ", ".join(f"'{name}'" for name in names)
    assert str(check.sqltext) == f"{column} IN ({quoted})"


@pytest.mark.parametrize(
    ("name", "args", "field"),
    [
        (MemoryAdded.NAME, {"memory_id": "m", "persona_id": "p", "content": "x"}, "tier"),
        (MemoryLinked.NAME, {"persona_id": "p", "source_id": "a", "target_id": "b"}, "kind"),
    ],
)
def test_events_refuse_other_names(name: str, args: dict[str, str], field: str) -> None:
    encoded = msgspec.json.encode({**args, field: "lukewarm"})
    with pytest.raises(EventValidationError, match=field):
        SCHEMA.decode(name, encoded)
