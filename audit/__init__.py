"""The audit room: an append-only, tamper-evident log of every use of personal data.

Owns: audit entries (RFC 8785 canonical JSON), the RFC 6962/9162 Merkle tree over them, signed
C2SP checkpoints, inclusion and consistency proofs, receipts and the offline verifier, the
signer's guard and its memory kept outside the store, the store behind a narrow seam
(``audit.storage``: SQLite and PostgreSQL, one code path), and the C2SP witness (its protocol
logic; HTTP is the gateway's).

May import: the standard library, cryptography, SQLAlchemy Core (table definitions and
statements, in ``audit.storage``, ``audit.memory`` and ``audit.witness`` only) and ``storekit``
(the only way to a database driver, and the RFC 8785 encoder). It imports none of the rooms
(import-linter checks this); the signing key is handed in by the gateway.

Must never: hold personal values (subjects are keyed hashes made by the vault), update or delete a
logged row, or return from ``append`` before the entry is durable (callers fail closed on
:class:`AuditUnavailable`).
"""

from audit.checkpoint import Checkpoint, NoteSigner, NoteVerifier, open_checkpoint
from audit.cosignature import CosignatureVerifier, Cosigner, with_signature_lines
from audit.entry import Actor, AppendReceipt, AuditEntry
from audit.errors import (
    AuditError,
    AuditUnavailable,
    CheckpointRefused,
    InvalidCheckpoint,
    InvalidEntry,
    InvalidProof,
    NotYetCheckpointed,
    StoreUnavailable,
)
from audit.export import ConsistencyProof, InclusionProof, LoggedEntry, export_lines
from audit.guard import LogIdentity
from audit.log import AuditLog
from audit.memory import (
    FileMemory,
    HeadMemory,
    Memories,
    SqlMemory,
    TreeHead,
    TrustedHead,
    remembered_heads,
)
from audit.storage import EntryFilter, LogStorage, SqlStorage
from audit.template import EntryTemplate, prepare_entry
from audit.verify import (
    Export,
    VerificationFailed,
    VerifyReport,
    verify,
    verify_receipt,
)
from audit.witness import SIZE_CONTENT_TYPE, Witness, WitnessRefusal, format_submission

__all__ = [
    "SIZE_CONTENT_TYPE",
    "Actor",
    "AppendReceipt",
    "AuditEntry",
    "AuditError",
    "AuditLog",
    "AuditUnavailable",
    "Checkpoint",
    "CheckpointRefused",
    "ConsistencyProof",
    "CosignatureVerifier",
    "Cosigner",
    "EntryFilter",
    "EntryTemplate",
    "Export",
    "FileMemory",
    "HeadMemory",
    "InclusionProof",
    "InvalidCheckpoint",
    "InvalidEntry",
    "InvalidProof",
    "LogIdentity",
    "LogStorage",
    "LoggedEntry",
    "Memories",
    "NotYetCheckpointed",
    "NoteSigner",
    "NoteVerifier",
    "SqlMemory",
    "SqlStorage",
    "StoreUnavailable",
    "TreeHead",
    "TrustedHead",
    "VerificationFailed",
    "VerifyReport",
    "Witness",
    "WitnessRefusal",
    "export_lines",
    "format_submission",
    "open_checkpoint",
    "prepare_entry",
    "remembered_heads",
    "verify",
    "verify_receipt",
    "with_signature_lines",
]
