"""The operations every interface calls: the CLI now, the web app alike.

:class:`DataDir` is the one list of the files PJai keeps and opens them; the services
(:class:`Personas`, :class:`Bookmarks`, :class:`Conversations`, :class:`Memories`,
flags, sync, upkeep, the audit trail of configuration) take its manager or the
directory, return plain values and raise :mod:`pjai.errors` errors.
:mod:`pjai.app.resolve` turns what a person typed (the start of an id, a persona's
name, nothing for the active persona) into ids, and :func:`typed_time` a typed time
into an instant; :data:`TEMPLATES` are the starting points of new personas.
"""

from __future__ import annotations

from pjai.app.audit import ConfigChange, config_changes
from pjai.app.bookmarks import Bookmarks, BookmarkView, Conversations, ConversationView
from pjai.app.datadir import SYNC_STATUS_FILE, DataDir, DataFile
from pjai.app.flags import FlagChange, FlagReport, flag_states, set_flag
from pjai.app.login import Passphrase
from pjai.app.memories import AutoLinked, Memories, MemoryChange, MemoryStats, MemoryView
from pjai.app.personas import (
    SETTINGS,
    PersonaChange,
    PersonaReport,
    Personas,
    merge_settings,
    privacy_changes,
)
from pjai.app.privacy import ErasureProof, erase_persona
from pjai.app.security import (
    SecurityReport,
    change_passphrase,
    init_security,
    new_recovery_code,
    rotate_key,
    security_status,
)
from pjai.app.subject import SubjectExport, export_subject
from pjai.app.sync import SyncOutcome, connect, sync_url
from pjai.app.synclink import SyncLink
from pjai.app.syncstatus import (
    PeerView,
    RejectedEvent,
    SyncReport,
    sync_conflicts,
    sync_status,
)
from pjai.app.templates import TEMPLATES, PersonaTemplate, template
from pjai.app.times import typed_time
from pjai.app.transfer import (
    MAX_UPLOAD_MB,
    UPLOAD_PROGRESS_BYTES,
    UPLOAD_TIMEOUT_S,
    export_archive,
    import_archive,
    import_legacy,
)
from pjai.app.upkeep import (
    Checkup,
    Migrations,
    Repair,
    backup,
    checkup,
    migrations,
    rebalance_shards,
    repair,
    upgrade_sql,
)

__all__ = [
    "MAX_UPLOAD_MB",
    "SETTINGS",
    "SYNC_STATUS_FILE",
    "TEMPLATES",
    "UPLOAD_PROGRESS_BYTES",
    "UPLOAD_TIMEOUT_S",
    "AutoLinked",
    "BookmarkView",
    "Bookmarks",
    "Checkup",
    "ConfigChange",
    "ConversationView",
    "Conversations",
    "DataDir",
    "DataFile",
    "ErasureProof",
    "FlagChange",
    "FlagReport",
    "Memories",
    "MemoryChange",
    "MemoryStats",
    "MemoryView",
    "Migrations",
    "Passphrase",
    "PeerView",
    "PersonaChange",
    "PersonaReport",
    "PersonaTemplate",
    "Personas",
    "RejectedEvent",
    "Repair",
    "SecurityReport",
    "SubjectExport",
    "SyncLink",
    "SyncOutcome",
    "SyncReport",
    "backup",
    "change_passphrase",
    "checkup",
    "config_changes",
    "connect",
    "erase_persona",
    "export_archive",
    "export_subject",
    "flag_states",
    "import_archive",
    "import_legacy",
    "init_security",
    "merge_settings",
    "migrations",
    "new_recovery_code",
    "privacy_changes",
    "rebalance_shards",
    "repair",
    "rotate_key",
    "security_status",
    "set_flag",
    "sync_conflicts",
    "sync_status",
    "sync_url",
    "template",
    "typed_time",
    "upgrade_sql",
]
