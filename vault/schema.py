"""What the vault accepts: one :class:`FieldSpec` per field of each record kind.

Checked before anything is encrypted, so a bad record is refused whole and nothing is stored.
Lengths are in characters and bound ciphertext sizes (an oversized value is an error, never
silently cut: a truncated name would be wrong data, law 09.08 art. 3 d, "exact").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from vault.errors import InvalidRecord

__all__ = ["KINDS", "RECTIFICATION_REQUEST", "REVIEW", "FieldSpec", "validate"]

_ISO_DATE = re.compile(r"\A\d{4}-\d{2}-\d{2}\Z")
_ALPHA3 = re.compile(r"\A[A-Z]{3}\Z")


@dataclass(frozen=True)
class FieldSpec:
    """One field: its Python type, bounds and allowed values."""

    type: type
    max_len: int | None = None
    choices: frozenset[str] | None = None
    iso_date: bool = False
    alpha3: bool = False
    min_value: int | None = None
    max_value: int | None = None

    def check(self, kind: str, name: str, value: object) -> None:
        # bool is an int in Python; a True household size is a bug, not a size.
        if not isinstance(value, self.type) or (self.type is int and isinstance(value, bool)):
            raise InvalidRecord(f"{kind}.{name}: expected {self.type.__name__}")
        if isinstance(value, str):
            if self.max_len is not None and len(value) > self.max_len:
                raise InvalidRecord(f"{kind}.{name}: longer than {self.max_len} characters")
            if "\x00" in value:
                raise InvalidRecord(f"{kind}.{name}: contains a NUL character")
            if self.choices is not None and value not in self.choices:
                raise InvalidRecord(f"{kind}.{name}: must be one of {sorted(self.choices)}")
            if self.iso_date:
                try:
                    if not _ISO_DATE.match(value):
                        raise ValueError
                    date.fromisoformat(value)
                except ValueError:
                    raise InvalidRecord(f"{kind}.{name}: expected a date yyyy-mm-dd") from None
            if self.alpha3 and not _ALPHA3.match(value):
                raise InvalidRecord(f"{kind}.{name}: expected an ISO 3166 alpha-3 code")
        if isinstance(value, int):
            if self.min_value is not None and value < self.min_value:
                raise InvalidRecord(f"{kind}.{name}: below {self.min_value}")
            if self.max_value is not None and value > self.max_value:
                raise InvalidRecord(f"{kind}.{name}: above {self.max_value}")


def _text(n: int) -> FieldSpec:
    return FieldSpec(str, max_len=n)


PERSON: Mapping[str, FieldSpec] = {
    "given_name_ar": _text(100),
    "family_name_ar": _text(100),
    "given_name_lat": _text(100),
    "family_name_lat": _text(100),
    "sex": FieldSpec(str, choices=frozenset({"F", "M"})),
    "birth_date": FieldSpec(str, max_len=10, iso_date=True),
    "birth_place": _text(100),
    # The CNIE (national electronic identity card) number; minors have none (Law 72.18).
    "cnie": _text(16),
    "nationality": FieldSpec(str, alpha3=True),
    "residency_status": FieldSpec(str, choices=frozenset({"citizen", "resident"})),
    "address": _text(300),
    "region": _text(64),
    "province": _text(64),
    "phone": _text(20),
}

# An RSU household: its socio-economic declaration is stored here, encrypted like a person's.
HOUSEHOLD: Mapping[str, FieldSpec] = {
    "head": _text(64),  # the head's vault subject id
    "members": _text(2000),  # JSON list of member subject ids, as the registry writes it
    "size": FieldSpec(int, min_value=1, max_value=100),
    "area": FieldSpec(str, choices=frozenset({"urban", "rural"})),
    "address": _text(300),
    "region": _text(64),
    "province": _text(64),
    "declaration": _text(20000),  # JSON of the proxy-means-test variables
    # Written by vault.scoring only: "<index> <model version> <model SHA-256>", the index as
    # decimal text (the model's decimals), sealed in one ciphertext with the model behind it.
    "score": _text(200),
    # A human reviewer's decision on the household's eligibility (Law 09.08 art. 11: no
    # decision rests solely on automated processing). While set, eligibility answers follow it
    # instead of the score; the score itself stays, and is still explained to the household.
    "override": FieldSpec(str, choices=frozenset({"eligible", "not_eligible"})),
}

# Where a citizen asked to be told of the uses of their record: an e-mail address or a mobile
# number, a record of its own (not the register's phone), erased when they opt out.
CONTACT: Mapping[str, FieldSpec] = {"notice_address": _text(254)}
# Why a reviewer decided as they did: the reason is about a household's situation, so it is
# personal data and lives here, encrypted, read back by the household's members.
REVIEW: Mapping[str, FieldSpec] = {
    "reason": _text(2000),
    # The eligibility an override decided, for the household's members to read.
    "eligibility": FieldSpec(str, choices=frozenset({"eligible", "not_eligible"})),
}

# A citizen's request to rectify their RNP record (Law 09.08 art. 8): the values they propose
# (JSON of field name to value) and their statement, and the office's reason for a refusal.
RECTIFICATION_REQUEST: Mapping[str, FieldSpec] = {
    "proposed": _text(4000),
    "statement": _text(2000),
    "refusal_reason": _text(2000),
}

KINDS: Mapping[str, Mapping[str, FieldSpec]] = {
    "person": PERSON,
    "household": HOUSEHOLD,
    "contact": CONTACT,
    "review": REVIEW,
    "rectification_request": RECTIFICATION_REQUEST,
}


def validate(kind: str, fields: Mapping[str, object]) -> None:
    """Raise :class:`InvalidRecord` (naming the field, never its value) unless every field is
    known for ``kind`` and well formed."""
    specs = KINDS.get(kind)
    if specs is None:
        raise InvalidRecord("unknown record kind")
    if not isinstance(fields, Mapping) or not fields:
        raise InvalidRecord(f"{kind}: no fields given")
    for name, value in fields.items():
        spec = specs.get(name) if isinstance(name, str) else None
        if spec is None:
            raise InvalidRecord(f"{kind}: unknown field")
        spec.check(kind, name, value)
