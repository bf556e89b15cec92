"""Import a database of the PJai desktop app (the legacy app) as events.

The legacy SQLite file is only read. ``personas`` rows become ``PersonaImported`` (and
one ``PersonaActivated`` for the active one), ``memory_entities`` rows
``MemoryImported``, ``conversations`` rows ``ConversationStarted`` plus one
``ConversationMessageAdded`` per message (id ``"{conversation_id}:{index}"``; a
message's own id is not kept). Each event is validated before it is committed.

A value PJai cannot take costs that value, never the row: the row is imported with
PJai's default (or the stand-in the report names) in its place, and the value is listed
in the report with why (:class:`UnmappedValue`). A row is rejected, with the reason, only
when nothing meaningful can be imported: no id, no name or content, a persona that was
not imported, an id that appears twice, an id PJai holds for another row, a
conversation none of whose messages can be read, or a required value PJai could only
hold cut (a name over 200 characters).
The report (JSON lines) has a header, then one line per rejected row and per value not
imported. Rows PJai already imported from this file are skipped, so a second run
imports nothing twice; it reports the rows that still cannot be imported and the values
left out of the rows PJai holds, as the first run did. A row is taken to be one PJai
imported when PJai has its id for a persona created at the same time (by id alone
when the legacy row has no ``created_at`` PJai keeps) or for a memory or conversation of
the same persona. Any other row with that id (a persona made in PJai, a row of another desktop
database) is a clash: the legacy row is rejected, saying what holds the id, and a
clashing persona's memories and conversations are rejected with it, never attached to
the persona PJai has.

Mapping: tier ``active`` becomes ``hot`` and a missing tier ``warm``; importance and the
importance threshold are read on the scale each database uses, 0-1 or 0-100
(:meth:`Scale.detect`), and a value outside it is reported, not clamped; tags are a
JSON array or comma-separated text; a retention period or memory limit of 0 means
unset; times are ISO-8601 text (naive means UTC) or epoch seconds or milliseconds, and
either of ``created_at`` and ``updated_at`` stands in for the other (the import time for
both); messages take their role from ``role``, ``sender`` or ``author``, their text from
``content``, ``text`` or ``message`` and their time from ``timestamp``, ``created_at``,
``time`` or ``date`` (the conversation's start if none). Personality traits (a JSON
object of strengths, an array of names or an array of trait objects):
:mod:`pjai.hybrid.legacy.traits`. Columns PJai's schema has no place for are not
imported: :data:`NOT_IMPORTED`. The activated persona's ``updated_at`` becomes the import
time, as PersonaActivated sets it.
"""

from __future__ import annotations

from pjai.hybrid.legacy.report import REPORT_FILE, LegacyImport, Rejection, UnmappedValue
from pjai.hybrid.legacy.rows import NOT_IMPORTED, SOURCE
from pjai.hybrid.legacy.run import BATCH_EVENTS, import_legacy
from pjai.hybrid.legacy.target import import_into
from pjai.hybrid.legacy.values import Scale

__all__ = [
    "BATCH_EVENTS",
    "NOT_IMPORTED",
    "REPORT_FILE",
    "SOURCE",
    "LegacyImport",
    "Rejection",
    "Scale",
    "UnmappedValue",
    "import_into",
    "import_legacy",
]
