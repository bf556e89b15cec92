"""A data subject's copy of their data (GDPR art. 15 access and art. 20 portability).

:func:`export_subject` writes one persona's records to a zip, in plaintext by design:
for each table the persona has rows in, ``<table>.json`` and ``<table>.csv``, and its
audit trail (every event of the persona in the log, with its payload opened where its
key still exists) as ``audit-trail.json`` and ``audit-trail.csv``, with a
``manifest.json`` saying what is in it. It is the subject's own request, so it is not
refused by ``privacy.export_allowed`` (which guards archives of the whole store).
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import select

from pjai.app.datadir import DataDir
from pjai.errors import ConfigError, EventError, NotFoundError
from pjai.hybrid import HybridDatabaseManager
from pjai.schema.personas import ERASED_TABLES
from pjai.schema.records import EventRecord
from pjai.schema.tables import personas
from pjai.schema.types import read_text

__all__ = ["SubjectExport", "export_subject"]


@dataclass(frozen=True, slots=True)
class SubjectExport:
    """What a subject export wrote: where, for which persona, rows per table, events."""

    path: Path
    persona_id: str
    rows: dict[str, int]
    events: int
    unreadable_events: int
    """Events of the persona whose sealed fields no key opens (erased keys)."""


def export_subject(
    manager: HybridDatabaseManager, persona_id: str, path: str | Path, *, overwrite: bool = False
) -> SubjectExport:
    """Write every record of ``persona_id`` and its audit trail to the zip ``path``
    (see the module). The file appears whole or not at all."""
    target = Path(path)
    DataDir(manager.data_dir).refuse_kept(target, manager.shards)
    if target.is_dir():
        raise ConfigError(f"{target} is a folder; give the path of a .zip file to write")
    if not target.parent.is_dir():
        # A plaintext export of personal data makes no folders no one asked for.
        raise ConfigError(f"{target.parent} is not a folder; give a .zip file in one")
    if target.exists() and not overwrite:
        raise ConfigError(f"{target} exists; pass --overwrite to replace it")
    if not manager.query(select(personas.c.id).where(personas.c.id == persona_id)):
        raise NotFoundError(f"no persona {persona_id!r}")
    tables = {"personas": _rows(manager, "personas", "id", persona_id)}
    for name in ERASED_TABLES:
        tables[name] = _rows(manager, name, "persona_id", persona_id)
    trail, unreadable = _trail(manager, persona_id)
    files: dict[str, bytes] = {}
    for name, rows in tables.items():
        files[f"{name}.json"] = _json(rows)
        files[f"{name}.csv"] = _csv(rows)
    files["audit-trail.json"] = _json(trail)
    files["audit-trail.csv"] = _csv([{k: v for k, v in e.items() if k != "payload"} for e in trail])
    counts = {name: len(rows) for name, rows in tables.items()}
    manifest = {
        "persona_id": persona_id,
        "exported_at": datetime.now(UTC).isoformat(),
        "rows": counts,
        "events": len(trail),
        "unreadable_events": unreadable,
    }
    files["manifest.json"] = _json(manifest)
    _write_zip(target, files)
    return SubjectExport(target, persona_id, counts, len(trail), unreadable)


def _rows(
    manager: HybridDatabaseManager, name: str, column: str, persona_id: str
) -> list[dict[str, Any]]:
    table = {t.name: t for t in manager.schema.metadata.sorted_tables}[name]
    found = manager.query(select(table).where(table.c[column] == persona_id))
    return [{k: _plain(v) for k, v in row._asdict().items()} for row in found]


def _plain(value: Any) -> Any:
    if isinstance(value, bytes | memoryview):
        return read_text(value)  # a cold memory's compressed text
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _trail(manager: HybridDatabaseManager, persona_id: str) -> tuple[list[dict[str, Any]], int]:
    store = manager.store
    entries: list[tuple[EventRecord, str]]
    if store is not None:
        entries = [(e.record, e.status) for e in store.events()]
    else:
        entries = [(r, "confirmed") for r in manager.shards.journal()]
    trail, unreadable = [], 0
    for record, status in entries:
        stored: Any = msgspec.json.decode(bytes(record.args))
        if not isinstance(stored, dict) or stored.get("persona_id") != persona_id:
            continue
        payload: Any
        try:
            event = manager.schema.decode(record.name, bytes(record.args), event_id=record.id)
            payload = msgspec.to_builtins(event)
        except EventError:
            payload, unreadable = None, unreadable + 1
        trail.append(
            {
                "event_id": record.id,
                "name": record.name,
                "position": record.position.global_seq,
                "at": record.at.isoformat(),
                "client_id": record.client_id,
                "session_id": record.session_id,
                "status": status,
                "payload": payload,
            }
        )
    return trail, unreadable


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str).encode()


def _csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in row.items()}
            )
    return out.getvalue().encode()


def _write_zip(target: Path, files: dict[str, bytes]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    temporary = Path(name)
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
            for file_name, data in files.items():
                zf.writestr(file_name, data)
        temporary.replace(target)
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {exc}") from exc
    finally:
        temporary.unlink(missing_ok=True)
