"""What a legacy import did: the result and its report file (JSON lines)."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pjai.errors import ConfigError
from pjai.files import json_value, replace_text
from pjai.hybrid.legacy.rows import TARGETS
from pjai.schema import utc_now

__all__ = [
    "REPORT_FILE",
    "LegacyImport",
    "Rejection",
    "UnmappedValue",
    "check_report_path",
    "forget_rows",
    "listed_rows",
    "reportable",
    "shown",
    "write_report",
]

REPORT_FILE = "legacy-import-report.jsonl"
"""The report's name in the data directory, unless the importer is given another path."""

_TITLE = "pjai import-legacy: the legacy rows and values that were not imported, and why"
_START = ('{"report": ' + json.dumps(_TITLE)).encode()
"""How a report file begins: its header's first field."""


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


MAX_SHOWN = 4096
"""The most characters of a value not imported that an import keeps for its report: a
longer one is kept as its start and its length (the legacy file holds it whole)."""


def shown(value: Any) -> Any:
    """``value`` as an import keeps it for its report: whole when its text (JSON for
    what is not text) takes at most :data:`MAX_SHOWN` characters, else the start of that
    text and its length. An import holds every value it leaves out until it writes the
    report: whole, a file of large values it cannot read would fill the memory."""
    text = value if isinstance(value, str) else json.dumps(reportable(value))
    if len(text) <= MAX_SHOWN:
        return value
    return f"{text[:MAX_SHOWN]}… ({len(text):,} characters in all, in the legacy file)"


def check_report_path(report: Path) -> None:
    """Raise :class:`~pjai.errors.ConfigError` unless ``report`` is a new file or an
    earlier report: a report never replaces anything else."""
    if not report.exists() and not report.is_symlink():
        return
    problem = "is not a regular file"
    if report.is_file():
        try:
            with report.open("rb") as file:
                if file.read(len(_START)) == _START:
                    return
        except OSError as exc:
            raise ConfigError(f"cannot read the import report {report}: {exc}") from exc
        problem = "exists and is not an import report"
    raise ConfigError(
        f"{report} {problem}; give --report a new file or an earlier report to replace"
    )


def write_report(
    result: LegacyImport,
    source: Path,
    not_imported: dict[str, str],
    *,
    error: str | None = None,
    tables: Collection[str] = (),
) -> None:
    """Write ``result`` to its report file, atomically: a header, then one line per row
    rejected and per value not imported. ``tables``: the file's tables that are not
    imported at all."""
    header = {
        "report": _TITLE,
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
        "tables_not_imported": [reportable(table) for table in tables],
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
    check_report_path(report)
    try:
        replace_text(report, "\n".join(lines) + "\n")
    except OSError as exc:
        raise ConfigError(f"cannot write the import report {report}: {exc}") from exc


def forget_rows(report: Path, rows: Mapping[str, Collection[str]]) -> int:
    """Rewrite ``report`` without the values it lists of ``rows`` (PJai's table name to
    row ids: those of an erased persona), atomically; how many values went (0 when the
    file is not there or lists none of them). Rejected rows name no value and stay, as
    do lines that are not the report's JSON. ``OSError`` when the file cannot be read
    or rewritten."""
    try:
        lines = report.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return 0
    entries = [_entry(line) for line in lines]
    gone = {n for n, entry in enumerate(entries) if _value_of(entry, rows)}
    if not gone:
        return 0
    kept = [line for n, line in enumerate(lines) if n not in gone]
    header = entries[0]
    if isinstance(header.get("values_not_imported"), int):
        header["values_not_imported"] -= len(gone)
        kept[0] = json.dumps(header)
    replace_text(report, "\n".join(kept) + "\n")
    return len(gone)


def listed_rows(report: Path) -> dict[str, set[str]]:
    """The rows whose values ``report`` lists: PJai's table name to row ids (none when
    the file is not there). ``OSError`` when it cannot be read."""
    try:
        lines = report.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return {}
    rows: dict[str, set[str]] = {}
    for entry in map(_entry, lines):
        row_id, table = entry.get("id"), TARGETS.get(str(entry.get("table")))
        if entry.get("kind") == "value" and isinstance(row_id, str) and table is not None:
            rows.setdefault(table, set()).add(row_id)
    return rows


def _value_of(entry: dict[str, Any], rows: Mapping[str, Collection[str]]) -> bool:
    """Whether ``entry`` is a value of one of ``rows``."""
    row_id, table = entry.get("id"), TARGETS.get(str(entry.get("table")), "")
    return (
        entry.get("kind") == "value" and isinstance(row_id, str) and row_id in rows.get(table, ())
    )


def _entry(line: str) -> dict[str, Any]:
    try:
        entry = json_value(line)
    except ValueError:
        return {}
    return entry if isinstance(entry, dict) else {}
