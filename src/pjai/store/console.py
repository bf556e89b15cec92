"""SQL typed by a person (the devtools console): read only, on a time and size budget."""

from __future__ import annotations

import itertools
import time
import zlib
from typing import Any

import apsw

from pjai.errors import QueryError
from pjai.store.query import Row, RowReader

__all__ = ["INSPECT_MAX_BYTES", "INSPECT_RESULT_BYTES", "INSPECT_SECONDS", "run_typed_sql"]

INSPECT_SECONDS = 5.0
"""How long a console query may run."""
INSPECT_RESULT_BYTES = 16_000_000
"""The most bytes of values a read-only console query's result may hold."""
INSPECT_MAX_BYTES = 1_000_000
"""The longest value a console query may make."""

_READING = frozenset(
    {apsw.SQLITE_SELECT, apsw.SQLITE_READ, apsw.SQLITE_FUNCTION, apsw.SQLITE_RECURSIVE}
)
"""What typed SQL may do."""


def run_typed_sql(
    conn: apsw.Connection, rows: RowReader, sql: str, limit: int, seconds: float
) -> tuple[list[str], list[Row]]:
    """Column names and first ``limit`` rows of ``sql`` run on ``conn``, which it may
    only read; :class:`~pjai.errors.QueryError` for bad SQL, anything but reading, or a
    query over its budget (``seconds``, :data:`INSPECT_RESULT_BYTES`,
    :data:`INSPECT_MAX_BYTES`). ``conn`` is left as it was found."""

    def only_reads(op: int, *_: Any) -> int:
        return apsw.SQLITE_OK if op in _READING else apsw.SQLITE_DENY

    if "\x00" in sql:
        raise QueryError("the SQL holds a NUL character (\\x00); remove it")
    deadline = time.monotonic() + seconds
    conn.authorizer = only_reads
    conn.set_progress_handler(lambda: time.monotonic() > deadline, 10_000)
    length = conn.limit(apsw.SQLITE_LIMIT_LENGTH, INSPECT_MAX_BYTES)
    try:
        cursor = conn.cursor()
        cursor.execute(sql)
        try:
            columns = [name for name, _ in cursor.get_description()]
        except apsw.ExecutionCompleteError:
            return [], []
        found, size = [], 0
        for row in itertools.islice(rows.iterate(cursor), limit):
            size += sum(_size(v) for v in row)
            if size > INSPECT_RESULT_BYTES:
                raise QueryError(
                    f"the result holds more than {INSPECT_RESULT_BYTES:,} bytes; narrow "
                    "it down (fewer columns or rows, substr() of long values)"
                )
            if time.monotonic() > deadline:
                raise apsw.InterruptError("the deadline passed between rows")
            found.append(row)
        return columns, found
    except apsw.AuthError as exc:
        raise QueryError(f"only reading is allowed here (SELECT or WITH): {exc}") from exc
    except apsw.InterruptError as exc:
        raise QueryError(
            f"the query ran for more than {seconds:g} s and was stopped; narrow it down "
            "(a WHERE, a LIMIT)"
        ) from exc
    except apsw.TooBigError as exc:
        raise QueryError(
            f"a value of the result is longer than {INSPECT_MAX_BYTES:,} bytes"
        ) from exc
    except UnicodeDecodeError as exc:
        # Typed SQL makes such text as easily as a damaged file holds it (a CAST of
        # a blob): say both, rather than that the file is damaged.
        raise QueryError(
            f"running SQL: a text value is not valid UTF-8 ({exc.reason} at byte "
            f"{exc.start}); read it as hex() instead. If a stored column holds it, "
            "`pjai doctor` checks the file"
        ) from exc
    except (ValueError, TypeError, zlib.error) as exc:
        # Raised by a PJai function given what it does not take (pjai_text(x'00')).
        raise QueryError(f"running SQL: {exc}") from exc
    finally:
        conn.authorizer = None
        conn.set_progress_handler(None)
        conn.limit(apsw.SQLITE_LIMIT_LENGTH, length)


def _size(value: Any) -> int:
    """The bytes a console result's value takes, as UTF-8 for text."""
    if isinstance(value, str):
        return len(value.encode(errors="replace"))
    return len(value) if isinstance(value, bytes) else 8
