"""What an enrolment carries: :class:`PersonIn`, validated before anything reaches the vault.

Validation messages name the rule, never the value (they end up in problem documents and in
import reject reports, which must not copy personal data: Law 09.08 art. 23, security).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from identity.geography import PROVINCES, REGIONS

__all__ = ["PERSON_FIELDS", "FieldProblem", "PersonIn", "field_problems"]

# The CNIE number: one or two letters (the issuing office) then up to six digits.
_CNIE = re.compile(r"\A[A-Z]{1,2}[0-9]{1,6}\Z")
# Moroccan numbers in E.164: +212, then 5 (fixed) or 6/7 (mobile), then eight digits.
_PHONE = re.compile(r"\A\+212[5-7][0-9]{8}\Z")
_ALPHA3 = re.compile(r"\A[A-Z]{3}\Z")
_EARLIEST_BIRTH = date(1900, 1, 1)


def _collapse(value: str) -> str:
    return " ".join(value.split())


_LETTER, _OTHER_SCRIPT, _NAME_MARK, _NOT_IN_NAMES = range(4)


@lru_cache(maxsize=4096)
def _char_kind(ch: str, script: str) -> int:
    # Cached per character: Unicode character names are slow to look up, names reuse few.
    if ch.isalpha():
        return _LETTER if script in unicodedata.name(ch, "") else _OTHER_SCRIPT
    if unicodedata.category(ch) == "Mn" or ch in " -'\u0640":
        return _NAME_MARK  # diacritics, tatweel, spaces, hyphens and apostrophes
    return _NOT_IN_NAMES


def _script_only(value: str, script: str) -> str:
    value = _collapse(unicodedata.normalize("NFC", value))
    letters = 0
    for ch in value:
        kind = _char_kind(ch, script)
        if kind == _LETTER:
            letters += 1
        elif kind == _OTHER_SCRIPT:
            raise ValueError(f"must be written in {script.title()} script")
        elif kind == _NOT_IN_NAMES:
            raise ValueError("may contain only letters, spaces, hyphens and apostrophes")
    if not letters:
        raise ValueError(f"must contain {script.title()} letters")
    return value


class PersonIn(BaseModel):
    """A person as an officer enrols them (RNP). Goes whole to the vault, nowhere else."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    given_name_ar: str = Field(min_length=1, max_length=100)
    family_name_ar: str = Field(min_length=1, max_length=100)
    given_name_lat: str = Field(min_length=1, max_length=100)
    family_name_lat: str = Field(min_length=1, max_length=100)
    sex: Literal["F", "M"]
    birth_date: date
    birth_place: str = Field(min_length=1, max_length=100)
    # Optional for minors (the CNIE is issued from age 16, compulsory at 18).
    cnie: str | None = Field(default=None, max_length=16)
    nationality: str = Field(default="MAR", max_length=3)
    residency_status: Literal["citizen", "resident"] = "citizen"
    address: str = Field(min_length=1, max_length=300)
    region: str = Field(max_length=64)
    province: str = Field(max_length=64)
    phone: str | None = Field(default=None, max_length=20)

    @field_validator("given_name_ar", "family_name_ar")
    @classmethod
    def _arabic(cls, value: str) -> str:
        return _script_only(value, "ARABIC")

    @field_validator("given_name_lat", "family_name_lat")
    @classmethod
    def _latin(cls, value: str) -> str:
        return _script_only(value, "LATIN")

    @field_validator("birth_place", "address")
    @classmethod
    def _text(cls, value: str) -> str:
        value = _collapse(value)
        # isprintable() is False for every category C character (and some others): the
        # per-character check runs only for the rare text it cannot clear.
        if not value.isprintable() and any(unicodedata.category(ch)[0] == "C" for ch in value):
            raise ValueError("contains control characters")
        return value

    @field_validator("birth_date")
    @classmethod
    def _plausible_birth(cls, value: date) -> date:
        if value > date.today():
            raise ValueError("is in the future")
        if value < _EARLIEST_BIRTH:
            raise ValueError("is before 1900")
        return value

    @field_validator("cnie", mode="before")
    @classmethod
    def _cnie(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            raise ValueError("must be text")
        value = "".join(value.split()).upper()
        if not _CNIE.match(value):
            raise ValueError("must be 1-2 letters followed by 1-6 digits")
        return value

    @field_validator("nationality")
    @classmethod
    def _alpha3(cls, value: str) -> str:
        value = value.upper()
        if not _ALPHA3.match(value):
            raise ValueError("must be an ISO 3166 alpha-3 code")
        return value

    @field_validator("phone", mode="before")
    @classmethod
    def _phone(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            raise ValueError("must be text")
        value = re.sub(r"[\s.\-()]", "", value)
        if value.startswith("00212"):
            value = "+" + value[2:]
        elif value.startswith("0"):
            value = "+212" + value[1:]
        if not _PHONE.match(value):
            raise ValueError("must be a Moroccan number (+212 then 9 digits)")
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if value not in REGIONS:
            raise ValueError("is not one of the 12 regions")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> PersonIn:
        if PROVINCES.get(self.province) != self.region:
            raise ValueError("province: is not a province or prefecture of the region")
        if (self.residency_status == "citizen") != (self.nationality == "MAR"):
            raise ValueError("residency_status: citizens hold nationality MAR, residents another")
        return self

    def vault_fields(self) -> dict[str, object]:
        """The record as the vault stores it (vault/schema.py "person"); absent fields omitted."""
        data = self.model_dump(exclude_none=True)
        data["birth_date"] = self.birth_date.isoformat()
        return data

    def name_birth_keys(self) -> tuple[str, str]:
        """The Arabic and Latin "name + birth date + birth place" strings to blind-index.

        The vault normalises them (script variants, case, accents, spacing) before hashing.
        """
        tail = f"{self.birth_date.isoformat()}|{self.birth_place}"
        return (
            f"{self.given_name_ar}|{self.family_name_ar}|{tail}",
            f"{self.given_name_lat}|{self.family_name_lat}|{tail}",
        )


PERSON_FIELDS: tuple[str, ...] = tuple(PersonIn.model_fields)

FieldProblem = tuple[str, str]


def field_problems(exc: ValidationError, *, codes: bool = False) -> list[FieldProblem]:
    """(field, reason) pairs from a validation error; never the submitted value. With
    ``codes``, a built-in check's reason is pydantic's error type (``missing``,
    ``date_from_datetime_parsing`` …) instead of its sentence; our own rules keep their fixed
    phrase either way."""
    problems: list[FieldProblem] = []
    for error in exc.errors(include_input=False, include_url=False, include_context=False):
        message = str(error["msg"]).removeprefix("Value error, ")
        field = ".".join(str(p) for p in error["loc"])
        if not field and ": " in message:
            # Cross-field rules name their field in the message ("province: ...").
            field, message = message.split(": ", 1)
        if codes and error["type"] != "value_error":
            message = error["type"]
        problems.append((field or "record", message))
    return problems
