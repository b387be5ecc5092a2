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
