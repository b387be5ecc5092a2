"""The feature catalogue and feature vectors of RSU scoring: pure computation, no store, no
keys.

:func:`features` turns one household declaration (JSON as rsu/declarations.py stores it) into the
value of every variable a model may use; :func:`feature_vector` packs those values into the
compact bytes the vault keeps encrypted beside the declaration, and :class:`Vectors` decodes a
batch of them straight into numpy for :mod:`vault.scoring.model`.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Mapping, Sequence
from types import CodeType
from typing import Any, NamedTuple

import numpy as np
import orjson

from vault.errors import IntegrityError, InvalidRecord

__all__ = [
    "AREA",
    "CATEGORICAL_FEATURES",
    "CATEGORICAL_ORDER",
    "FEATURES",
    "FEATURES_FIELD",
    "HEAD",
    "LEVELS",
    "NUMERIC_FEATURES",
    "NUMERIC_ORDER",
    "REGION",
    "VECTOR_HEADER",
    "Vectors",
    "catalogue_digest",
    "current_vector",
    "feature_vector",
    "features",
    "parse_declaration",
]

_EDUCATION = ("none", "primary", "secondary", "higher")
_WORKING = frozenset({"employed", "self_employed"})
_DURABLES = (
    "refrigerator", "television", "satellite_dish", "washing_machine", "computer", "internet",
    "car", "motorcycle", "air_conditioner", "water_heater", "oven", "landline",
)  # fmt: skip


# -- features --------------------------------------------------------------------------------
# Every variable a model may use, computed from the declaration as rsu/declarations.py stores it.
# A model names a subset; an official model whose variables are not in this catalogue needs
# code here first (docs/scoring.md), never an eval of anything from the model file.
NUMERIC_FEATURES = frozenset({
    "household_size_log", "share_children", "share_elderly", "head_female", "head_age_60plus",
    "share_adults_employed", "share_adults_secondary_plus", "disability_any",
    "rooms_per_person", "has_bathroom", "has_kitchen", "water_spending_pc_log",
    "electricity_spending_pc_log", "telephone_spending_pc_log", *_DURABLES,
    "phones_per_person", "cattle_log", "small_livestock_log", "land_log", "tractor",
})  # fmt: skip
CATEGORICAL_FEATURES = frozenset({
    "head_education", "head_occupation", "housing_type", "occupancy", "water_source",
    "electricity", "sanitation", "cooking_fuel",
})  # fmt: skip
FEATURES = NUMERIC_FEATURES | CATEGORICAL_FEATURES


def _flag(value: object) -> float:
    return 1.0 if value is True else 0.0


def features(declaration: Mapping[str, Any]) -> dict[str, float | str]:
    """The value of every catalogue variable for one declaration (numbers, or a level name).

    Raises :class:`InvalidRecord` (naming no value) when the declaration is malformed.
    """
    try:
        members = declaration["members"]
        n = len(members)
        if n < 1:
            raise InvalidRecord("household declaration has no members")
        heads = [m for m in members if m["relation"] == "head"]
        if len(heads) != 1:
            raise InvalidRecord("household declaration needs exactly one head")
        head = heads[0]
        # One pass over the members (this runs for every household of a national rescoring).
        children = elderly = adults = employed = secondary_plus = 0
        disabled = False
        for m in members:
            age = int(m["age"])
            if age < 15:
                children += 1
            else:
                adults += 1
                if m["occupation"] in _WORKING:
                    employed += 1
                if m["education"] in ("secondary", "higher"):
                    secondary_plus += 1
                if age >= 65:
                    elderly += 1
            if not disabled and m.get("disability") is True:
                disabled = True
        n_adults = max(1, adults)
        housing = declaration["housing"]
        utilities = declaration["utilities"]
        spending = declaration["spending"]
        durables = declaration["durables"]
        farm = declaration.get("agriculture") or {}
        out: dict[str, float | str] = {
            "household_size_log": math.log(n),
            "share_children": children / n,
            "share_elderly": elderly / n,
            "head_female": 1.0 if head["sex"] == "F" else 0.0,
            "head_age_60plus": 1.0 if int(head["age"]) >= 60 else 0.0,
            "head_education": str(head["education"]),
            "head_occupation": str(head["occupation"]),
            "share_adults_employed": employed / n_adults,
            "share_adults_secondary_plus": secondary_plus / n_adults,
            "disability_any": 1.0 if disabled else 0.0,
            "housing_type": str(housing["type"]),
            "occupancy": str(housing["occupancy"]),
            "rooms_per_person": int(housing["rooms"]) / n,
            "has_bathroom": _flag(housing["bathroom"]),
            "has_kitchen": _flag(housing["kitchen"]),
            "water_source": str(utilities["water"]),
            "electricity": str(utilities["electricity"]),
            "sanitation": str(utilities["sanitation"]),
            "cooking_fuel": str(utilities["cooking_fuel"]),
            "water_spending_pc_log": math.log1p(float(spending["water"]) / n),
            "electricity_spending_pc_log": math.log1p(float(spending["electricity"]) / n),
            "telephone_spending_pc_log": math.log1p(float(spending["telephone"]) / n),
            "phones_per_person": int(durables.get("mobile_phones", 0)) / n,
            "cattle_log": math.log1p(float(farm.get("cattle", 0))),
            "small_livestock_log": math.log1p(float(farm.get("sheep_goats", 0))),
            "land_log": math.log1p(float(farm.get("land_ha", 0))),
            "tractor": _flag(farm.get("tractor", False)),
        }
        for name in _DURABLES:
            out[name] = _flag(durables.get(name, False))
        return out
    except (KeyError, TypeError, ValueError, AttributeError):
        raise InvalidRecord("household declaration is malformed") from None


# -- feature vectors -------------------------------------------------------------------------
# What a household was last scored from, kept encrypted beside its declaration (the record's
# field "features", vault.tables.features): a rescoring decrypts these few hundred bytes and
# reads the numbers straight into numpy, where deriving them from the declaration means
# parsing and walking some 2 KiB of JSON a household. Written by the scoring only, deleted
# whenever the declaration is rewritten (vault.tables.DERIVED) or erased: a vector present is
# always the one its record's declaration gives today.
#
# Layout: the format and the first 4 bytes of a digest of the catalogue and of the code that
# computes it (catalogue_digest: a vector from another catalogue or other code is derived
# again, never misread), the numeric variables as little-endian float64 in catalogue order,
# then, as UTF-8 separated by U+001F: the area, the region, the head's IDCS (for the audit
# entry's subject) and the categorical variables' levels.
FEATURES_FIELD = "features"
NUMERIC_ORDER = tuple(sorted(NUMERIC_FEATURES))
CATEGORICAL_ORDER = tuple(sorted(CATEGORICAL_FEATURES))


def _code_digest(code: CodeType, into: Any) -> None:
    """Feed ``code`` to the hash ``into``: its bytecode, names and constants, the code objects
    among them (comprehensions) in turn, never a repr that holds a memory address."""
    into.update(code.co_code)
    into.update("\n".join(code.co_names).encode())
    for const in code.co_consts:
        if isinstance(const, CodeType):
            _code_digest(const, into)
        elif isinstance(const, frozenset):  # a set's order follows the hash seed
            into.update(repr(sorted(map(repr, const))).encode())
        else:
            into.update(repr(const).encode())


def catalogue_digest() -> bytes:
    """What a stored vector was computed with: the catalogue's names in order, the constants
    :func:`features` reads, and its code (and its helper's). Any change to how a variable is
    computed changes it, so a vector computed by other code is derived again, never misread
    (another Python release changes the bytecode too: the vectors are then derived again)."""
    digest = hashlib.sha256()
    for name in (*NUMERIC_ORDER, "", *CATEGORICAL_ORDER, "", *_DURABLES, "", *sorted(_WORKING)):
        digest.update(name.encode() + b"\n")
    _code_digest(features.__code__, digest)
    _code_digest(_flag.__code__, digest)
    return digest.digest()


VECTOR_HEADER = b"\x01" + catalogue_digest()[:4]
_NUMBERS = struct.Struct(f"<{len(NUMERIC_ORDER)}d")
_NUMBERS_AT = len(VECTOR_HEADER)
_STRINGS_AT = _NUMBERS_AT + _NUMBERS.size
_SEP = "\x1f"
AREA, REGION, HEAD, LEVELS = 0, 1, 2, 3  # positions among a vector's strings
_STRINGS = LEVELS + len(CATEGORICAL_ORDER)


def feature_vector(declaration: Mapping[str, Any]) -> bytes:
    """The feature vector of one declaration (see above). Raises :class:`InvalidRecord`, naming
    no value, when the declaration is malformed."""
    f = features(declaration)
    strings = (
        str(declaration.get("area")),
        str(declaration.get("region")),
        _head_idcs(declaration) or "",
        *(str(f[name]) for name in CATEGORICAL_ORDER),
    )
    if any(_SEP in text for text in strings):
        raise InvalidRecord("household declaration is malformed")
    numbers = _NUMBERS.pack(*(float(f[name]) for name in NUMERIC_ORDER))
    return VECTOR_HEADER + numbers + _SEP.join(strings).encode()


def current_vector(blob: bytes) -> bool:
    """Whether a stored vector is of this catalogue (else it is derived again)."""
    return blob.startswith(VECTOR_HEADER)


class Vectors(NamedTuple):
    """Feature vectors of a batch, decoded: one row of numbers and one tuple of strings each."""

    numbers: np.ndarray[Any, Any]  # (households, numeric variables), catalogue order
    strings: list[list[str]]  # area, region, head's IDCS, levels in catalogue order

    @classmethod
    def decode(cls, blobs: Sequence[bytes]) -> Vectors:
        if any(len(blob) < _STRINGS_AT for blob in blobs):
            raise IntegrityError("a stored feature vector is malformed")
        numbers = np.frombuffer(
            b"".join([blob[_NUMBERS_AT:_STRINGS_AT] for blob in blobs]), dtype="<f8"
        ).reshape(len(blobs), len(NUMERIC_ORDER))
        strings = [blob[_STRINGS_AT:].decode().split(_SEP) for blob in blobs]
        if any(len(row) != _STRINGS for row in strings):
            raise IntegrityError("a stored feature vector is malformed")
        return cls(numbers, strings)


def parse_declaration(text: str | bytes) -> dict[str, Any]:
    """A stored declaration (JSON text, as rsu/declarations.py writes it; or its UTF-8, which
    orjson checks). orjson, not the standard library's json: a rescoring parses one per
    household, and orjson parses them at a fraction of the cost (bench/scoring.py)."""
    try:
        declaration = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise InvalidRecord("household declaration is malformed") from None
    if not isinstance(declaration, dict):
        raise InvalidRecord("household declaration is malformed")
    return declaration


def _head_idcs(declaration: Mapping[str, Any]) -> str | None:
    members = declaration.get("members")
    if isinstance(members, list):
        for member in members:
            if isinstance(member, dict) and member.get("relation") == "head":
                idcs = member.get("idcs")
                return idcs if isinstance(idcs, str) else None
    return None
