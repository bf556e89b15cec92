"""The HybridDatabaseManager: the reactive store and the SQL primary as one data layer."""

from __future__ import annotations

from pjai.hybrid.archive import ArchiveManifest, ImportResult, export_archive, import_archive
from pjai.hybrid.flags import FLAGS, Flags, FlagState
from pjai.hybrid.health import Health
from pjai.hybrid.integrity import VerifyReport
from pjai.hybrid.legacy import LegacyImport, Rejection, import_legacy
from pjai.hybrid.manager import HybridDatabaseManager
from pjai.hybrid.quarantine import Quarantined, QuarantineReport
from pjai.hybrid.recovery import StoreRebuilt
from pjai.hybrid.repair import Repaired, Side
from pjai.hybrid.shardrows import spread

__all__ = [
    "FLAGS",
    "ArchiveManifest",
    "FlagState",
    "Flags",
    "Health",
    "HybridDatabaseManager",
    "ImportResult",
    "LegacyImport",
    "QuarantineReport",
    "Quarantined",
    "Rejection",
    "Repaired",
    "Side",
    "StoreRebuilt",
    "VerifyReport",
    "export_archive",
    "import_archive",
    "import_legacy",
    "spread",
]
