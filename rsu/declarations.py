"""The household's declaration as a registration office submits it: the members (by IDCS, each
already in the RNP) and the socio-economic questionnaire of the proxy-means test, validated
here, and the vault record it becomes (what vault/scoring/ reads).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from identity.geography import REGIONS
from identity.idcs import verhoeff_valid
from identity.person import field_problems

__all__ = [
    "Agriculture",
    "DeclarationIn",
    "Durables",
    "Housing",
    "MemberIn",
    "Spending",
    "Utilities",
    "problems_of",
    "validate_members",
    "vault_record",
]

Relation = Literal[
    "head", "spouse", "child", "parent", "sibling", "grandchild", "other_relative", "non_relative"
]
Education = Literal["none", "primary", "secondary", "higher"]
Occupation = Literal["employed", "self_employed", "unemployed", "inactive", "retired", "student"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MemberIn(_Strict):
    """One member as the registration office declares them (their civil data is in the RNP)."""

    idcs: str = Field(pattern=r"^[2-9]\d{9}$")
    relation: Relation
    sex: Literal["F", "M"]
    age: int = Field(ge=0, le=130)
    education: Education = "none"
    occupation: Occupation = "inactive"
    disability: bool = False

    @model_validator(mode="after")
    def _check_digit(self) -> MemberIn:
        if not verhoeff_valid(self.idcs):
            raise ValueError("idcs: check digit is wrong")
        return self


class Housing(_Strict):
    type: Literal[
        "villa", "apartment", "moroccan_house", "traditional_house", "rural_dwelling", "shanty",
        "other",
    ]  # fmt: skip
    occupancy: Literal["owner", "tenant", "free", "other"]
    rooms: int = Field(ge=1, le=50)
    bathroom: bool
    kitchen: bool


class Utilities(_Strict):
    water: Literal["network", "standpipe", "well", "other"]
    electricity: Literal["network", "solar", "none"]
    sanitation: Literal["sewer", "septic", "none"]
    cooking_fuel: Literal["gas", "electricity", "wood", "other"]


class Spending(_Strict):
    """Monthly spending in dirhams (MAD)."""

    water: int = Field(ge=0, le=100_000)
    electricity: int = Field(ge=0, le=100_000)
    telephone: int = Field(ge=0, le=100_000)


class Durables(_Strict):
    refrigerator: bool = False
    television: bool = False
    satellite_dish: bool = False
    washing_machine: bool = False
    computer: bool = False
    internet: bool = False
    car: bool = False
    motorcycle: bool = False
    air_conditioner: bool = False
    water_heater: bool = False
    oven: bool = False
    landline: bool = False
    mobile_phones: int = Field(default=0, ge=0, le=50)


class Agriculture(_Strict):
    cattle: int = Field(default=0, ge=0, le=100_000)
    sheep_goats: int = Field(default=0, ge=0, le=100_000)
    land_ha: float = Field(default=0.0, ge=0, le=100_000)
    tractor: bool = False


class DeclarationIn(_Strict):
    """The socio-economic declaration of a household (the proxy-means-test questionnaire)."""

    area: Literal["urban", "rural"]
    region: str = Field(max_length=64)
    province: str = Field(max_length=64)
    address: str | None = Field(default=None, max_length=300)
    housing: Housing
    utilities: Utilities
    spending: Spending
    durables: Durables = Durables()
    agriculture: Agriculture | None = None

    @model_validator(mode="after")
    def _territory(self) -> DeclarationIn:
        provinces = REGIONS.get(self.region)
        if provinces is None:
            raise ValueError("region: not one of the 12 regions")
        if self.province not in provinces:
            raise ValueError("province: not a province of this region")
        return self


def validate_members(members: Sequence[MemberIn]) -> None:
    if not members:
        raise ValueError("members: at least one member")
    if len(members) > 100:
        raise ValueError("members: at most 100")
    if sum(1 for m in members if m.relation == "head") != 1:
        raise ValueError("members: exactly one head")
    if len({m.idcs for m in members}) != len(members):
        raise ValueError("members: a person is listed twice")


def vault_record(members: Sequence[MemberIn], decl: DeclarationIn) -> dict[str, object]:
    """The vault record: the declaration as vault/scoring/ reads it, and the membership."""
    head = next(m.idcs for m in members if m.relation == "head")
    body = decl.model_dump(exclude={"address"})
    body["members"] = [m.model_dump() for m in members]
    record: dict[str, object] = {
        "head": head,
        "members": json.dumps(
            [{"idcs": m.idcs, "relation": m.relation} for m in members], separators=(",", ":")
        ),
        "size": len(members),
        "area": decl.area,
        "region": decl.region,
        "province": decl.province,
        "declaration": json.dumps(body, ensure_ascii=False, separators=(",", ":")),
    }
    if decl.address is not None:
        record["address"] = decl.address
    return record


def problems_of(exc: ValidationError | ValueError) -> list[tuple[str, str]]:
    """(field, reason) pairs of a refused registration; never a submitted value."""
    if isinstance(exc, ValidationError):
        return list(field_problems(exc))
    message = str(exc)
    field, _, reason = message.partition(": ")
    return [(field, reason)] if reason else [("record", message)]
