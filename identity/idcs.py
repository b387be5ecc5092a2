"""The IDCS: the 10-digit digital civil and social identifier (Law 72.18, art. 8).

An IDCS is nine digits drawn from the operating system's CSPRNG followed by a Verhoeff check
digit (Verhoeff, 1969: detects every single-digit error and every adjacent transposition, which
a Luhn digit does not). It is derived from no personal data, so it reveals nothing about its
holder and cannot be recomputed from a name or a birth date.

Candidates must also pass the filters MOSIP applies to its UIN (``mosip.kernel.uin.*``), so that
an identifier is hard to mistype, hard to guess and not "memorable" enough to be sold or faked:

- ``not-start-with``: no leading 0 or 1 (a leading 0 is lost by spreadsheets; 1 is read as l/I);
- ``length.sequence-limit=3``: no ascending or descending run of three (``123``, ``987``);
- ``length.repeating-limit=2``: a digit never reappears within two positions (``11``, ``1x1``);
- ``length.repeating-block-limit=2``: no block of two or more digits appears twice (``4545``,
  ``27..27``); together with the previous rule this also excludes ``111``;
- ``length.digits-limit=5``: the first five digits differ from the last five;
- ``length.reverse-digits-limit=5``: the first five differ from the last five reversed;
- ``cyclic-numbers``: no cyclic number (142857 and its rotations) appears in it.

Uniqueness is not this module's job: the register's primary key enforces it and the issuer
retries on the (rare) collision.
"""

from __future__ import annotations

import functools
import os
import re
import secrets
import struct
from typing import Final

__all__ = [
    "Idcs",
    "InvalidIdcs",
    "passes_filters",
    "random_idcs",
    "random_idcs_many",
    "verhoeff_check_digit",
    "verhoeff_valid",
]

LENGTH: Final = 10

# Verhoeff's tables: multiplication in the dihedral group D5, the position permutation and the
# inverse. Taken from the 1969 paper (and every reference implementation since).
_D: Final = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
# The position permutation: row i is Verhoeff's p = (0 1 5 8 9 4 2 7)(3 6) applied i times,
# computed rather than typed (a mistyped row silently loses transposition detection).
_P1: Final = (1, 5, 7, 6, 2, 8, 3, 0, 9, 4)


def _powers(perm: tuple[int, ...], count: int) -> tuple[tuple[int, ...], ...]:
    rows = [tuple(range(10))]
    while len(rows) < count:
        rows.append(tuple(perm[x] for x in rows[-1]))
    return tuple(rows)


_P: Final = _powers(_P1, 8)
_INV: Final = (0, 4, 3, 2, 1, 5, 6, 7, 8, 9)

# MOSIP's default list; only 142857 fits in ten digits, but its rotations are cyclic too.
_CYCLIC_BASE: Final = ("142857", "0588235294117647", "052631578947368421")
CYCLIC_NUMBERS: Final = tuple(
    sorted({c[i:] + c[:i] for c in _CYCLIC_BASE for i in range(len(c)) if len(c) <= LENGTH})
)

_DIGITS: Final = re.compile(r"[0-9]+")


class InvalidIdcs(ValueError):
    """Not an IDCS: wrong length, not digits, bad check digit or a filtered pattern.

    The message never repeats the value (it may be a mistyped real identifier).
    """


def _checksum(digits: str) -> int:
    c = 0
    for i, ch in enumerate(reversed(digits)):
        c = _D[c][_P[i & 7][ord(ch) - 48]]
    return c


def verhoeff_check_digit(digits: str) -> str:
    """The Verhoeff digit to append to ``digits`` (a non-empty string of ASCII digits)."""
    if not digits or not _DIGITS.fullmatch(digits):
        raise ValueError("Verhoeff check digits are defined over ASCII digits only")
    return _check_digit(digits)


def _check_digit(digits: str) -> str:
    c = 0
    d, p = _D, _P
    for i, ch in enumerate(reversed(digits), 1):
        c = d[c][p[i & 7][ord(ch) - 48]]
    return str(_INV[c])


def verhoeff_valid(number: str) -> bool:
    """True if ``number`` ends with the right Verhoeff check digit."""
    if len(number) < 2 or not _DIGITS.fullmatch(number):
        return False
    return _checksum(number) == 0


def _local_violation(number: str) -> bool:
    # sequence-limit=3 and repeating-limit=2, in one pass.
    for i in range(1, len(number)):
        a = ord(number[i])
        if a == ord(number[i - 1]) or (i >= 2 and a == ord(number[i - 2])):
            return True
        if i >= 2:
            step = a - ord(number[i - 1])
            if step in (1, -1) and ord(number[i - 1]) - ord(number[i - 2]) == step:
                return True
    return False


def passes_filters(number: str) -> bool:
    """True if ``number`` passes every MOSIP UIN filter listed in the module docstring."""
    if len(number) != LENGTH or not _DIGITS.fullmatch(number) or number[0] in "01":
        return False
    if _local_violation(number):
        return False
    # A block of two or more digits seen twice (regex ``(\d{2,}).*?\1``) means its first two
    # digits are seen twice, non-overlapping; overlapping pairs ("aaa") were refused above. So
    # counting distinct pairs is equivalent here, and ~10x faster than the backtracking regex.
    if len({number[i : i + 2] for i in range(LENGTH - 1)}) < LENGTH - 1:
        return False
    first, last = number[:5], number[5:]
    if first == last or first == last[::-1]:
        return False
    return not any(c in number for c in CYCLIC_NUMBERS)


# Candidates are drawn as a random valid five-digit head plus a random valid four-digit tail for
# that head's last two digits, both from tables of strings that already satisfy the two local
# filters. This is only a speed-up (a uniform 9-digit draw is rejected ~90% of the time);
# acceptance is still decided by passes_filters() on the full number. The draw is not exactly
# uniform over the ~78 M valid numbers (heads have different numbers of tails); the birthday
# rate measured in tests matches an effective pool of ~70 M, which is all uniqueness needs, and
# an IDCS is an identifier, not a secret.
@functools.cache  # asked for by every prefix the tables grow, for a handful of pairs
def _allowed(a: int, b: int) -> tuple[int, ...]:
    out = []
    for c in range(10):
        if c in (a, b):
            continue
        if a >= 0 and (b - a) in (1, -1) and c - b == b - a:
            continue
        out.append(c)
    return tuple(out)


def _extend(prefixes: list[str], times: int) -> list[str]:
    for _ in range(times):
        prefixes = [
            p + str(c)
            for p in prefixes
            for c in _allowed(int(p[-2]) if len(p) >= 2 else -1, int(p[-1]))
        ]
    return prefixes


@functools.cache
def _draw_tables() -> tuple[tuple[str, ...], dict[tuple[int, int], tuple[str, ...]]]:
    """The heads and, by a head's last two digits, the tails: built on the first draw (a fifth
    of a second), so that processes which never issue an IDCS do not pay for them."""
    heads = tuple(_extend([str(d) for d in range(2, 10)], 4))
    tails = {
        (a, b): tuple(t[2:] for t in _extend([f"{a}{b}"], 4))
        for a in range(10)
        for b in range(10)
        if a != b
    }
    return heads, tails


def _from_draw(r: int) -> str | None:
    """The candidate a 64-bit draw from the OS CSPRNG names, or None if it fails a filter.

    The draw picks both halves (34,539 heads, at most 3,904 tails): the modulo bias is below
    2**-36, far beneath anything observable.
    """
    heads, tails_of = _draw_tables()
    head = heads[r % len(heads)]
    tails = tails_of[(ord(head[3]) - 48, ord(head[4]) - 48)]
    digits = head + tails[(r // len(heads)) % len(tails)]
    check = _check_digit(digits)
    # Cheap rejections first: the body already satisfies the local filters, so only the
    # check digit can break them. passes_filters() still has the last word.
    a, b, c = ord(digits[7]), ord(digits[8]), ord(check)
    if c in (a, b) or (c - b == b - a and c - b in (1, -1)):
        return None
    candidate = digits + check
    if len({candidate[i : i + 2] for i in range(LENGTH - 1)}) < LENGTH - 1:
        return None
    return candidate if passes_filters(candidate) else None


def random_idcs() -> str:
    """A fresh IDCS candidate from the CSPRNG that passes Verhoeff and every filter.

    Not yet unique: :class:`identity.Register` inserts it under a unique key and retries.
    """
    while True:
        candidate = _from_draw(secrets.randbits(64))
        if candidate is not None:
            return candidate


def random_idcs_many(count: int) -> list[str]:
    """``count`` candidates as :func:`random_idcs` draws them (not necessarily distinct), from
    one read of the OS CSPRNG per round instead of one per draw: a bulk enrolment's batch."""
    out: list[str] = []
    while len(out) < count:
        # Two draws a number wanted cover the filters' rejections: a second round is rare.
        wanted = count - len(out)
        pool = os.urandom(16 * wanted)
        for (r,) in struct.iter_unpack(">Q", pool):
            candidate = _from_draw(r)
            if candidate is not None:
                out.append(candidate)
                if len(out) == count:
                    break
    return out


class Idcs(str):
    """A validated IDCS. ``Idcs("2345...")`` raises :class:`InvalidIdcs` unless it is well formed.

    It is a ``str`` so that it binds to SQL parameters and JSON without ceremony; its ``repr``
    is masked so that a stray log line or traceback does not carry a whole identifier.
    """

    __slots__ = ()

    def __new__(cls, value: str) -> Idcs:
        if not isinstance(value, str):
            raise InvalidIdcs("an IDCS is a string of 10 digits")
        if len(value) != LENGTH or not _DIGITS.fullmatch(value):
            raise InvalidIdcs("an IDCS is exactly 10 ASCII digits")
        if not verhoeff_valid(value):
            raise InvalidIdcs("the IDCS check digit does not match (mistyped?)")
        if not passes_filters(value):
            raise InvalidIdcs("not an issuable IDCS (fails the identifier filters)")
        return super().__new__(cls, value)

    @classmethod
    def generate(cls) -> Idcs:
        return cls.trusted(random_idcs())

    @classmethod
    def trusted(cls, value: str) -> Idcs:
        """Wrap a value this module produced or the register stored (already validated)."""
        return str.__new__(cls, value)

    def __repr__(self) -> str:
        return f"Idcs('{self[:2]}******{self[-2:]}')"
