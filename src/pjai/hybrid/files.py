"""The files the hybrid manager keeps in a data directory, named once.

``pjai.app.DataDir`` is the one list of every file PJai keeps; it takes these names
from here, and the SQL primary's default file name from :mod:`pjai.sql.engine`.
"""

from __future__ import annotations

__all__ = [
    "FLAGS_FILE",
    "IDENTITY_FILE",
    "IMPORTING_FILE",
    "OFF_CLAIMED",
    "OFF_HEAD",
    "STORE_FILE",
    "UNSEEN",
]

STORE_FILE = "store.db"
"""The reactive store: event log and materialized state."""

FLAGS_FILE = "flags.json"
"""Feature flags set with ``pjai flags set``."""

IDENTITY_FILE = "identity.json"
"""This installation's client id."""

IMPORTING_FILE = "importing.json"
"""An import (or a backup) into the directory that has not finished (what it copies,
since when): a directory holding it is refused until it is run again or the file removed."""

OFF_HEAD = "sql_head_store_off"
"""The store file's metadata entry holding SQL's head after the last commit made with
the store switched off."""

OFF_CLAIMED = "sql_head_store_off_claimed"
"""The store file's metadata entry holding SQL's head after the last commit made with
the store switched off as it stands before SQL commits it: SQL may hold events up to
there that :data:`OFF_HEAD` does not name yet (the process was killed between SQL's
commit and its note) or never will (SQL's commit failed)."""

UNSEEN = "sql_history_unseen"
"""The store file's metadata entry set while a file made in a directory used before has
not taken in SQL's journal: SQL may hold history it knows nothing of (no :data:`OFF_HEAD`
could be noted in a file that was not there)."""
