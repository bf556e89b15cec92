"""The HybridDatabaseManager: the reactive store and the SQL primary as one data layer."""

from __future__ import annotations

from pjai.hybrid.flags import FLAGS, Flags, FlagState
from pjai.hybrid.health import Health
from pjai.hybrid.integrity import VerifyReport
from pjai.hybrid.manager import HybridDatabaseManager

__all__ = ["FLAGS", "FlagState", "Flags", "Health", "HybridDatabaseManager", "VerifyReport"]
