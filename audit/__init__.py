"""The audit room: an append-only, tamper-evident log of every use of personal data.

Owns: audit entries (RFC 8785 canonical JSON), the RFC 6962/9162 Merkle tree over them, signed
C2SP checkpoints, inclusion and consistency proofs, receipts and the offline verifier, and the
storage driver (SQLAlchemy; SQLite and PostgreSQL) behind a narrow seam.

May import: the standard library, SQLAlchemy, cryptography, rfc8785. It imports none of the other
Sijill packages (import-linter checks this); the signing key is handed in by the gateway.

Must never: hold personal values (subjects are keyed hashes made by the vault), update or delete a
logged row, or return from ``append`` before the entry is durable (callers fail closed on
:class:`AuditUnavailable`).
"""

from audit.checkpoint import Checkpoint, NoteSigner, NoteVerifier, open_checkpoint
from audit.entry import Actor, AppendReceipt, AuditEntry
from audit.errors import (
    AuditError,
    AuditUnavailable,
    InvalidCheckpoint,
    InvalidEntry,
    InvalidProof,
)
from audit.log import (
    AuditLog,
    ConsistencyProof,
    EntryTemplate,
    InclusionProof,
    LoggedEntry,
    prepare_entry,
)
from audit.storage import EntryFilter, LogStorage, SqlStorage
from audit.verify import Export, VerificationFailed, VerifyReport, verify, verify_receipt

__all__ = [
    "Actor",
    "AppendReceipt",
    "AuditEntry",
    "AuditError",
    "AuditLog",
    "AuditUnavailable",
    "Checkpoint",
    "ConsistencyProof",
    "EntryFilter",
    "EntryTemplate",
    "Export",
    "InclusionProof",
    "InvalidCheckpoint",
    "InvalidEntry",
    "InvalidProof",
    "LogStorage",
    "LoggedEntry",
    "NoteSigner",
    "NoteVerifier",
    "SqlStorage",
    "VerificationFailed",
    "VerifyReport",
    "open_checkpoint",
    "prepare_entry",
    "verify",
    "verify_receipt",
]
