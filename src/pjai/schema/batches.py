"""Ops planned as few statements (:func:`batched`): a run of inserts of one shape sent
as one batch, a check asked again answered by the first asking."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pjai.schema.ops import Insert, Missing, Op, Update

__all__ = ["Batch", "Statement", "batched", "is_check", "writes"]


def is_check(op: Op) -> bool:
    """Whether ``op`` only checks that a row exists (an update without values)."""
    return isinstance(op, Update) and not op.values


def writes(ops: Sequence[Op]) -> int:
    """How many of ``ops`` write."""
    return sum(1 for op in ops if not is_check(op))


Statement = tuple[str, list[Sequence[Any]], bool]
"""Rendered SQL, its rows of parameters (several only for a run of inserts sent as one
batch), and whether it is a check (a SELECT of one row)."""


@dataclass(frozen=True, slots=True)
class Batch:
    """Ops planned as few statements: see :func:`batched`."""

    statements: list[Statement]
    answers: list[int | None]
    """Per op, the statement whose matched rows answer it (``None`` for an insert)."""

    def unmatched(self, ops: Sequence[Op], matched: Sequence[int]) -> tuple[int, Missing] | None:
        """The first op that had to match a row and matched none: its index and why."""
        for index, (op, at) in enumerate(zip(ops, self.answers, strict=True)):
            if isinstance(op, Insert) or at is None or matched[at] or op.missing is None:
                continue
            return index, op.missing
        return None


def batched(ops: Sequence[Op], render: Callable[[Op], tuple[str, list[Any]]]) -> Batch:
    """Plan ``ops`` so that running the statements in order means running the ops one
    by one.

    Consecutive inserts with the same SQL go as one batch, and a check of another
    table may run before that batch (an insert cannot change what it reads). A check
    asked again before any update or delete takes the first one's answer: a missing
    row fails the ops at the first asking.
    """
    statements: list[Statement] = []
    answers: list[int | None] = []
    asked: dict[tuple[str, tuple[Any, ...]], int] = {}
    run: tuple[str, str, list[Sequence[Any]]] | None = None  # table, SQL, rows
    for op in ops:
        sql, params = render(op)
        if isinstance(op, Insert):
            if run is None or run[1] != sql:
                if run is not None:
                    statements.append((run[1], run[2], False))
                run = (op.table, sql, [])
            run[2].append(params)
            answers.append(None)
            continue
        check = is_check(op)
        key = (sql, tuple(params))
        if not check:
            asked.clear()  # an update or delete may change any check's answer
        elif key in asked:
            answers.append(asked[key])
            continue
        if run is not None and (not check or run[0] == op.table):
            statements.append((run[1], run[2], False))
            run = None
        if check:
            asked[key] = len(statements)
        answers.append(len(statements))
        statements.append((sql, [params], check))
    if run is not None:
        statements.append((run[1], run[2], False))
    return Batch(statements, answers)
