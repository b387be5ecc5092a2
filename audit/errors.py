"""The audit log's errors."""

from __future__ import annotations


class AuditError(Exception):
    """Base class of every error the audit log raises."""


class AuditUnavailable(AuditError):
    """The store could not make an entry durable (or could not be read).

    Callers fail closed: no audit entry, no release of personal data (DESIGN.md, "fail closed").
    """


class InvalidEntry(AuditError, ValueError):
    """An entry breaks the schema (e.g. an unknown actor kind or outcome)."""


class InvalidProof(AuditError, ValueError):
    """A proof was asked for an index or size the tree does not have."""


class InvalidCheckpoint(AuditError, ValueError):
    """A checkpoint note is malformed or its signature does not verify."""


class CheckpointRefused(AuditUnavailable):
    """The signer will not sign the store's tree: the store cannot prove it consistent with a
    checkpoint signed, or a tree head written, before. Someone rewrote or rolled back the audit
    store; the log stops (fails closed) until an operator has looked."""


class NotYetCheckpointed(AuditUnavailable):
    """No signed checkpoint covers the entry yet (it is in the unsigned tail, at most a
    checkpoint interval old): ask again shortly."""


class StoreUnavailable(AuditUnavailable):
    """The audit store's database failed (unreachable, restarted, a statement refused). The
    driver's error is the cause; the message carries none of its parameters."""
