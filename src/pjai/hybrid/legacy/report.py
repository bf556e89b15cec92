"""What a legacy import did: the result and its report file (JSON lines)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pjai.errors import ConfigError
from pjai.schema import utc_now

__all__ = [
    "REPORT_FILE",
    "LegacyImport",
    "Rejection",
    "UnmappedValue",
    "reportable",
    "write_report",
]

REPORT_FILE = "legacy-import-report.jsonl"
"""The report's name in the data directory, unless the importer is given another path."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """A legacy row that was not imported: its table, its id and why."""

    table: str
    row_id: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class UnmappedValue:
    """A value of an imported legacy row that PJai did not take, and what it kept instead.

    ``column`` names the place inside the column too: ``tags[3]``,
    ``personality_traits[1].description``, ``messages[0].time``. ``value`` is the legacy
    value as read (JSON values decoded).
    """

    table: str
    row_id: str
    column: str
    value: Any
    reason: str


@dataclass(frozen=True, slots=True)
class LegacyImport:
    """What one run of :func:`~pjai.hybrid.legacy.import_legacy` imported, skipped and left.

    ``unmapped`` lists the values left out of the rows PJai holds from this file, whether
    this run or an earlier one imported them; ``scales`` the scale read from the file for
    each column of fractions (``{"memory_entities.importance": "0-1"}``).
    """

    personas: int
    memories: int
    conversations: int
    messages: int
    skipped_personas: int
    skipped_memories: int
    skipped_conversations: int
    rejections: tuple[Rejection, ...]
    report: Path
    unmapped: tuple[UnmappedValue, ...] = ()
    scales: dict[str, str] = field(default_factory=dict)

    @property
    def rejected(self) -> int:
        """How many legacy rows were not imported."""
        return len(self.rejections)

    def summary(self) -> dict[str, object]:
        """This run's counts as ``pjai import-legacy --json`` prints them."""
        return {
            "personas": self.personas,
            "memories": self.memories,
            "conversations": self.conversations,
            "rejected": self.rejected,
            "values_not_imported": len(self.unmapped),
            "report": str(self.report),
        }


def reportable(value: Any) -> Any:
    """``value`` as JSON can hold it: bytes as hex, what JSON cannot hold as its repr."""
    if isinstance(value, bytes):
        return f"x'{value.hex()}'"
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return repr(value)
    return value


def write_report(
    result: LegacyImport,
    source: Path,
    not_imported: dict[str, str],
    *,
    error: str | None = None,
) -> None:
    """Write ``result`` to its report file, atomically: a header, then one line per row
    rejected and per value not imported."""
    header = {
        "report": "pjai import-legacy: the legacy rows and values that were not imported, and why",
        "lines": "each further line is a rejected row (kind 'row': table, id, reason) or a "
        "value not imported from a row PJai holds (kind 'value': table, id, column, value, "
        "reason)",
        "source": str(source.resolve()),
        "finished_at": utc_now().isoformat(),
        "complete": error is None,
        "error": error,
        "imported": {
            "personas": result.personas,
            "memories": result.memories,
            "conversations": result.conversations,
            "messages": result.messages,
        },
        "skipped_as_already_present": {
            "personas": result.skipped_personas,
            "memories": result.skipped_memories,
            "conversations": result.skipped_conversations,
        },
        "rejected": result.rejected,
        "values_not_imported": len(result.unmapped),
        "scales": result.scales,
        "columns_not_imported": not_imported,
    }
    lines = [json.dumps(header)]
    lines += [
        json.dumps({"kind": "row", "table": r.table, "id": r.row_id, "reason": r.reason})
        for r in result.rejections
    ]
    lines += [
        json.dumps(
            {
                "kind": "value",
                "table": u.table,
                "id": u.row_id,
                "column": u.column,
                "value": reportable(u.value),
                "reason": u.reason,
            }
        )
        for u in result.unmapped
    ]
    report = result.report
    temporary = report.with_name(report.name + ".tmp")
    try:
        temporary.write_text("\n".join(lines) + "\n", encoding="utf-8")
        temporary.replace(report)
    except OSError as exc:
        raise ConfigError(f"cannot write the import report {report}: {exc}") from exc
