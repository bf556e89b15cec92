"""Import a database of the PJai desktop app (the legacy app) as events.

The legacy SQLite file is only read. ``personas`` rows become ``PersonaImported`` (and
one ``PersonaActivated`` for the active one), ``memory_entities`` rows
``MemoryImported``, ``conversations`` rows ``ConversationStarted`` plus one
``ConversationMessageAdded`` per message (id ``"{conversation_id}:{index}"``). Each event
is validated before it is committed; a row that cannot be imported is rejected with the
reason and listed in the report (JSON lines: a header, then one ``{"table", "id",
"reason"}`` per row). Rows whose ids PJai already has are skipped, so a second run
imports nothing twice and reports the rows that still cannot be imported.

Mapping: tier ``active`` becomes ``hot`` and a missing tier ``warm``; importance and
the importance threshold (0-100) are divided by 100; a retention period or memory limit
of 0 means unset; times are ISO-8601 text (naive means UTC) or epoch seconds or
milliseconds. Personality traits: Big Five names (any case) go to ``big_five``, others
to ``custom_traits``; traits that all lie within 0..1 (one a fraction) are scaled to
0-100. Columns PJai's schema has no place for are not imported: :data:`NOT_IMPORTED`.
The activated persona's ``updated_at`` becomes the import time, as PersonaActivated sets it.
"""

from __future__ import annotations

from pjai.hybrid.legacy.rows import NOT_IMPORTED, SOURCE
from pjai.hybrid.legacy.run import BATCH_EVENTS, LegacyImport, Rejection, import_legacy
from pjai.hybrid.legacy.target import import_into

__all__ = [
    "BATCH_EVENTS",
    "NOT_IMPORTED",
    "SOURCE",
    "LegacyImport",
    "Rejection",
    "import_into",
    "import_legacy",
]
