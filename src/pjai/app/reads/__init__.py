"""Read models for the screens: live queries that keep what a view shows current.

Each module serves one view and returns :class:`~pjai.store.LiveQuery` objects (or plain
reads) built from the declared tables, so that a view never writes SQL. A live query
runs on the store, or on the SQL primary while the store is off, and follows the
switch.
"""

from __future__ import annotations

__all__: list[str] = []
