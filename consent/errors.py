"""Errors a caller can act on; messages name rules and fields, never personal values."""

from __future__ import annotations


class ConsentError(Exception):
    """Base class."""


class InvalidConsent(ConsentError):
    """The request cannot become a consent; ``reason`` is a stable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class ConsentNotFound(ConsentError):
    """No such consent for this subject (the same answer whether it exists for another)."""
