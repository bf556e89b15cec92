"""How each backend that holds PJai's tables spells op statements and stores Python
values (:class:`Flavor`), and SQLite's: its flavor, and the settings and SQL functions
every one of PJai's SQLite databases starts with."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import Boolean

from pjai.schema.expressions import fold_case, message_memory_id
from pjai.schema.ops import Compressed
from pjai.schema.search import cut_cjk
from pjai.schema.types import (
    CompressibleText,
    JsonDocument,
    Timestamp,
    compress_text,
    read_text,
    to_iso,
)

__all__ = ["SQLITE", "SQLITE_TUNING", "Convert", "Flavor", "plain_text", "sqlite_functions"]

Convert = Callable[[Any], Any]
_json = msgspec.json.Encoder()


def _to_json(value: Any) -> str:
    return _json.encode(value).decode()


def _sqlite_stored_text(value: Any) -> Any:
    return compress_text(value.text) if isinstance(value, Compressed) else value


def plain_text(value: Any) -> Any:
    """A text value for a backend that compresses by itself: the text as is."""
    return value.text if isinstance(value, Compressed) else value


@dataclass(frozen=True, slots=True)
class Flavor:
    """How one backend spells op statements and stores Python values.

    ``stores`` pairs column types with what turns a Python value into the value stored
    in a column of that type (the first pair whose type the column's is). ``compress``
    and ``decompress`` spell a column's value turned into (or out of) its compressed
    form, ``{c}`` standing for the column.
    """

    name: str
    placeholder: str
    greatest: str
    stores: tuple[tuple[type[Any], Convert], ...]
    compress: str = "{c}"
    decompress: str = "{c}"

    def converter(self, column_type: object) -> Convert | None:
        """What stores a value in a column of ``column_type``; ``None``: the value as is."""
        return next(
            (convert for kind, convert in self.stores if isinstance(column_type, kind)), None
        )


SQLITE = Flavor(
    "sqlite",
    "?",
    "max",
    (
        (Timestamp, to_iso),
        (JsonDocument, _to_json),
        (Boolean, int),
        (CompressibleText, _sqlite_stored_text),
    ),
    compress="pjai_compress({c})",
    decompress="pjai_text({c})",
)
"""SQLite through apsw or sqlite3: ISO-8601 text times, 0/1 booleans, JSON text, zlib
BLOBs for compressed text (with PJai's SQL functions, see :func:`sqlite_functions`)."""


def _sqlite_message_memory_id(value: Any) -> Any:
    return message_memory_id(value) if isinstance(value, str) else value


def _sqlite_compress(value: Any) -> Any:
    return compress_text(value) if isinstance(value, str) else value


SQLITE_TUNING = (
    # Checkpoint every ~40 MB of WAL instead of 4 MB: index pages that many small commits
    # dirty again and again are copied to the database once, and a commit of 1,000
    # memories (which dirties more than 4 MB of pages) does not checkpoint every time.
    "PRAGMA wal_autocheckpoint=10000",
    f"PRAGMA journal_size_limit={64 * 1024 * 1024}",
    # A 16 MiB page cache instead of 2: each memory goes into five B-trees at scattered
    # places, and past ~100,000 memories their pages no longer fit in 2.
    f"PRAGMA cache_size=-{16 * 1024}",
)
"""The settings every connection to one of PJai's SQLite databases (the store, an SQLite
SQL primary) starts with."""


def sqlite_functions() -> dict[str, Callable[[Any], Any]]:
    """The SQL functions PJai's SQLite databases need: register each with one argument."""
    return {
        "pjai_compress": _sqlite_compress,
        "pjai_lower": fold_case,
        "pjai_message_memory_id": _sqlite_message_memory_id,
        "pjai_text": read_text,
        "pjai_words": cut_cjk,
    }
