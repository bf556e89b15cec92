"""The exceptions PJai raises.

Every error PJai raises derives from :class:`PjaiError`. Driver errors (apsw,
msgspec, SQLAlchemy) are translated in one place per backend and kept as
``__cause__``::

    PjaiError
     ├── EventError                 an event could not be committed or applied
     │    ├── UnknownEventError       its name is not in this version's schema
     │    ├── EventValidationError    its payload does not validate
     │    ├── KeyErasedError          a sealed field's data key was erased with its persona
     │    ├── KeyMissingError         a sealed field's data key is not on this device
     │    └── MaterializationError    its materializer or a state constraint refused it
     ├── StoreError                 the reactive store cannot do what was asked
     │    ├── StoreModeError          a store file was opened synced but made standalone,
     │    │                           or the other way round
     │    ├── StoreClosedError        the store was closed
     │    ├── StoreCorruptError       a store file is not a readable PJai store
     │    └── RebaseError             upstream events do not continue the local history
     ├── QueryError                 a read query failed
     │    └── NotFoundError           the persona, memory, bookmark or conversation it
     │                                names does not exist
     ├── ArchiveError               an export archive cannot be written or read
     │    └── ArchiveCorruptError     it is damaged or was changed after export
     ├── SqlError                   the SQL primary failed
     │    ├── ErasedValueError        a sealed value whose data key was erased
     │    ├── SqlAheadError           its journal holds a commit at the position being
     │    │                           projected (another process wrote with the store off)
     │    └── SqlUnavailableError     it cannot be reached (down, locked, pool exhausted)
     │         └── SqlSchemaMissingError  it answers without PJai's tables (made again)
     ├── ConfigError                a setting (URL, flag, shard list) is invalid
     │    ├── EmbeddingsUnavailable   semantic search's model cannot be used here
     │    └── KeysRefused             the sync server refused a keys request
     │         └── KeysBusy               as too soon (429)
     ├── PrivacyError               a persona's privacy settings refuse what was asked
     ├── BusyError                  the web app runs as much of that work as it takes now
     ├── NoRoomError                a disk has no room for the work asked, found before it
     │                              wrote anything
     ├── KeyRingError               the key ring cannot do it: locked, wrong passphrase,
     │                              an erased persona, an altered key
     ├── PluginError                a plugin was not run, hit one of its limits, or failed
     ├── ProtocolError              a sync frame is not valid protocol (its ``code`` says how)
     ├── ConnectionClosed           a sync connection was closed or broke
     ├── DuplicateEventError        a pushed event's id is already in the server's log
     ├── RowError                   a legacy row cannot become events
     ├── Unreadable                 a legacy value cannot be read as what its column holds
     └── BadOp                      a materializer named a table or column that does not exist

    UnknownEventWarning             an event from a newer PJai was kept but not applied

The classes of this module are the ones callers catch in general. The others are
defined beside the code that raises them:
:class:`pjai.memory.encoders.EmbeddingsUnavailable`, :class:`pjai.app.keysync.KeysRefused`,
:class:`pjai.app.keysync.KeysBusy`,
:class:`pjai.plugins.sandbox.PluginError`, :class:`pjai.sync.protocol.ProtocolError`,
:class:`pjai.sync.transport.ConnectionClosed` and
:class:`pjai.sync.server.log.DuplicateEventError`. Three of them never reach a caller:
:class:`pjai.hybrid.legacy.values.RowError` is reported as a rejected row of a legacy
import, :class:`pjai.hybrid.legacy.values.Unreadable` as a value it did not
import, and :class:`pjai.schema.render.BadOp` as the ``MaterializationError`` of the
event at fault.
"""

from __future__ import annotations

__all__ = [
    "ArchiveCorruptError",
    "ArchiveError",
    "BusyError",
    "ConfigError",
    "ErasedValueError",
    "EventError",
    "EventValidationError",
    "KeyErasedError",
    "KeyMissingError",
    "KeyRingError",
    "MaterializationError",
    "NoRoomError",
    "NotFoundError",
    "PjaiError",
    "PrivacyError",
    "QueryError",
    "RebaseError",
    "SqlAheadError",
    "SqlError",
    "SqlSchemaMissingError",
    "SqlUnavailableError",
    "StoreClosedError",
    "StoreCorruptError",
    "StoreError",
    "StoreModeError",
    "UnknownEventError",
    "UnknownEventWarning",
]


class PjaiError(Exception):
    """Root of every error PJai raises."""


class EventError(PjaiError):
    """An event could not be committed or applied.

    ``event`` is the event name (``v1.MemoryAdded``), ``field`` the payload field at
    fault when one is (dotted for nested fields), ``reason`` what was wrong.
    """

    def __init__(self, event: str, reason: str, *, field: str | None = None) -> None:
        self.event = event
        self.field = field
        self.reason = reason
        where = f"field '{field}': " if field else ""
        super().__init__(f"event {event}: {where}{reason}")


class UnknownEventError(EventError):
    """The event name is not part of this version's schema."""


class EventValidationError(EventError):
    """The event payload does not validate against its declared type."""


class KeyErasedError(EventError):
    """A sealed field of the event cannot be opened: its data key was erased with its
    persona."""


class KeyMissingError(EventError):
    """A sealed field of the event cannot be opened: its data key is not on this device
    (another device's key, or a key ring restored from an older copy). A rebuild once
    the key is here applies the event."""


class MaterializationError(EventError):
    """The event's materializer, or a constraint of the state it writes, refused it."""


class StoreError(PjaiError):
    """The reactive store cannot do what was asked."""


class StoreModeError(StoreError):
    """A store file was opened in the other mode (synced or standalone) than it was made."""


class StoreClosedError(StoreError):
    """The store was used after :meth:`pjai.store.Store.close`."""


class StoreCorruptError(StoreError):
    """A store file is truncated, corrupt or not a PJai store. Nothing was reset."""


class RebaseError(StoreError):
    """Upstream events do not continue the store's confirmed history."""


class QueryError(PjaiError):
    """A read query failed (bad SQL, unknown table or column, wrong parameters)."""


class NotFoundError(QueryError):
    """What a command names (a persona, memory, bookmark or conversation) does not exist."""


class ArchiveError(PjaiError):
    """An export archive cannot be written or read (e.g. an unknown archive format)."""


class ArchiveCorruptError(ArchiveError):
    """An archive does not match its manifest: damaged or changed. Nothing was written."""


class SqlError(PjaiError):
    """The SQL primary failed in a way that is not the event's fault."""


class ErasedValueError(SqlError):
    """A sealed column value whose data key was erased with its persona: it opens
    nowhere any more."""


class SqlAheadError(SqlError):
    """SQL's journal already holds another event at a position being projected: another
    process committed to SQL with the store switched off. The store takes SQL's events
    in before committing after them."""


class SqlUnavailableError(SqlError):
    """The SQL primary cannot be reached now: down, locked, or out of connections."""


class SqlSchemaMissingError(SqlUnavailableError):
    """The SQL primary answers without PJai's tables (its database was made again, as a
    restore does): it counts as away until its tables are back (a restore) or PJai is
    opened again, which sets it up anew. PJai makes no table in it meanwhile: a restore
    under way would then fail."""


class ConfigError(PjaiError):
    """A setting is invalid: a database URL, a flag name or value, a shard list."""


class BusyError(PjaiError):
    """The web app already runs as much of that kind of long work (a console query, a
    time travel replay, an export...) as it takes at once; the message says what is
    busy and when to try again. Refused at once: nothing waits in a queue."""


class NoRoomError(PjaiError):
    """A disk has no room for the work asked (an import, an upload), with the spare room
    PJai leaves there (:data:`pjai.hybrid.room.SPARE_BYTES`): found before the work
    wrote anything, so nothing is left half-written. The message names the disk, the
    room needed and the room free."""


class PrivacyError(PjaiError):
    """A persona's privacy settings refuse what was asked (an export while
    ``privacy.export_allowed`` is off, memories from conversations while
    ``privacy.data_collection`` is off); the message names the persona and the setting."""


class KeyRingError(PjaiError):
    """The key ring cannot do what was asked: it is locked or the passphrase, key file
    or recovery code does not open it, the persona was erased, or a key was altered."""


class UnknownEventWarning(UserWarning):
    """An event written by a newer PJai is kept in the log but not materialized."""
