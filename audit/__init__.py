"""The audit room: an append-only, tamper-evident log of every use of personal data.

Owns: audit entries (RFC 8785 canonical JSON), the RFC 6962/9162 Merkle tree over them, signed
C2SP checkpoints, inclusion and consistency proofs, receipts and the offline verifier, the
storage driver (SQLAlchemy; SQLite and PostgreSQL) behind a narrow seam, the signer's memory
kept outside that store, and the C2SP witness (its protocol logic; HTTP is the gateway's).

May import: the standard library, SQLAlchemy, cryptography, rfc8785. It imports none of the other
Sijill packages (import-linter checks this); the signing key is handed in by the gateway.

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
)
from audit.log import (
    AuditLog,
    ConsistencyProof,
    EntryTemplate,
    InclusionProof,
    LoggedEntry,
    LogIdentity,
    export_lines,
    prepare_entry,
)
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
