"""Where the audit log is kept: the interface its semantics are written against, and the SQL
store behind it (:mod:`audit.storage.sql`, tables in :mod:`audit.storage.tables`).

Owns: the audit tables, the sequencer's exclusive section, and turning driver errors into
:class:`audit.errors.StoreUnavailable`. May import: ``audit.merkle``, ``audit.errors``,
SQLAlchemy Core and ``storekit`` (the only way it reaches a driver). Must never: update or
delete a logged row, or know what an entry means (that is ``audit.log``'s).
"""

from audit.storage.interface import (
    EntryFilter,
    LogStorage,
    Sequencer,
    StoredCheckpoint,
    StoredEntry,
)
from audit.storage.sql import SqlStorage
from audit.storage.tables import SUBJECT_SEGMENT, node_id, node_key

__all__ = [
    "SUBJECT_SEGMENT",
    "EntryFilter",
    "LogStorage",
    "Sequencer",
    "SqlStorage",
    "StoredCheckpoint",
    "StoredEntry",
    "node_id",
    "node_key",
]
