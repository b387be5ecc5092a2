"""Masking obligations a decision may carry, applied by the vault before a value leaves it.

Law 09.08 art. 3 (data adequate, relevant, not excessive): an agency that needs an age band
gets the birth year, one that needs to confirm a phone gets its last two digits.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["apply_mask"]


def _year(value: object) -> object:
    return str(value)[:4] if isinstance(value, str) else None


def _last2(value: object) -> object:
    digits = [c for c in str(value) if c.isdigit()]
    return "".join(digits[-2:])


def _initial(value: object) -> object:
    text = str(value).strip()
    return text[:1]


def _redact(_value: object) -> object:
    return None


_MASKS: dict[str, Callable[[object], object]] = {
    "year": _year,
    "last2": _last2,
    "initial": _initial,
    "redact": _redact,
}


def apply_mask(rule: str, value: object) -> object:
    """Apply ``rule`` (a name from :data:`vault.decision.MASKS`); unknown rules never get here
    (the verifier refuses such decisions)."""
    return _MASKS[rule](value)
