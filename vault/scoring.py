"""RSU socio-economic scoring, inside the trusted boundary.

The proxy-means-test (PMT) index of a household is computed here and nowhere else, because only
the vault may read the declaration in plaintext (DESIGN.md "Trust zones"). What leaves:

- to the scoring caller, a :class:`ScoreEvent`: model version, model digest and a keyed digest
  of the inputs, never the score or a declared value (the caller writes the audit entry; the
  vault imports no audit code);
- to an agency, through :meth:`HouseholdScoring.eligible`, one boolean under a decision for the
  action ``eligibility`` (Law 72.18: programs get "eligible or not", not the index);
- to the household's own member, through :meth:`HouseholdScoring.explain`, each variable's
  contribution to their score (Law 09.08 art. 11: a person may object to a decision based
  solely on automated processing, which presupposes being able to see how it was reached).

A model is a versioned JSON file (see vault/scoring_models/ and docs/scoring.md): an intercept,
per-variable coefficients (numeric, or one per level for a categorical variable) and territorial
(region) coefficients. Its SHA-256 over the exact file bytes is its digest and is stored with
every score, so a score can always be traced to the coefficients that produced it.

Scores are quantised to the model's published decimals (7, as the programs' thresholds
9.743001 and 9.3264284) and stored as decimal text; eligibility compares :class:`Decimal`
values, so binary floating point never decides a boundary case.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import struct
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import CodeType
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, delete, func, select, update

from storekit.bulk import among, chunks
from vault import tables as t
from vault.decision import Decision
from vault.envelope import NONCE_END as _NONCE_END
from vault.envelope import encrypt_record
from vault.errors import (
    DecisionRefused,
    Erased,
    IntegrityError,
    InvalidRecord,
    UnknownSubject,
    VaultError,
)
from vault.schema import validate

if TYPE_CHECKING:
    from vault.core import Vault, _SubjectRows

__all__ = [
    "FEATURES",
    "MODELS_DIR",
    "Contribution",
    "Explanation",
    "HouseholdScoring",
    "ModelSet",
    "NotScored",
    "ScoreEvent",
    "ScoredBatch",
    "ScoringModel",
    "Vectors",
    "feature_vector",
    "features",
]

MODELS_DIR = Path(__file__).with_name("scoring_models")
FORMAT = "sijill-pmt/1"
LANGUAGES = ("ar", "fr", "en")
# The scoring writes one field on a household record (vault/schema.py HOUSEHOLD): ``score``,
# holding "<index> <model version> <model SHA-256>", one ciphertext, so the index and the model
# that produced it are sealed together. Records scored before kept the version and digest in
# two fields of their own: they are read as a fallback and deleted when the household is
# scored again.
SCORE_FIELD = "score"
_LEGACY_SCORE_FIELDS = ("score_model", "score_model_digest")
_TEXT = b"s"  # the type tag of a text value's plaintext (vault.envelope.encode_value)
_BYTES = b"b"  # and of a bytes value's (a feature vector)
# What a score was computed from (_Scored.source): a stored feature vector or the declaration,
# then that ciphertext's header and nonce. A rewrite of either draws a new nonce.
_FROM_VECTOR, _FROM_DECLARATION = b"v", b"d"
_DECLARATION_WRITES = "declaration_writes"


def declaration_writes(conn: Connection, *, lock: bool = False) -> int | None:
    """The count of declaration rewrites (vault.tables.counters), None if the store has no
    counter. ``lock`` (PostgreSQL): hold it shared until the transaction ends, so that no
    rewrite commits meanwhile (SQLite's write lock already excludes them)."""
    query = select(t.counters.c.value).where(t.counters.c.name == _DECLARATION_WRITES)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update(read=True)
    value = conn.execute(query).scalar_one_or_none()
    return None if value is None else int(value)


def count_declaration_write(conn: Connection) -> None:
    """In the transaction that rewrites a declaration of an existing record (or erases one)."""
    conn.execute(
        update(t.counters)
        .where(t.counters.c.name == _DECLARATION_WRITES)
        .values(value=t.counters.c.value + 1)
    )


_VERSION = re.compile(r"\A[a-z0-9][a-z0-9._\-]{0,63}\Z")
_INPUTS_LABEL = "rsu-inputs:v1"

_EDUCATION = ("none", "primary", "secondary", "higher")
_WORKING = frozenset({"employed", "self_employed"})
_DURABLES = (
    "refrigerator", "television", "satellite_dish", "washing_machine", "computer", "internet",
    "car", "motorcycle", "air_conditioner", "water_heater", "oven", "landline",
)  # fmt: skip


class NotScored(VaultError):
    """The household has no score yet (or its model is not loaded for an explanation)."""


# -- features --------------------------------------------------------------------------------
# Every variable a model may use, computed from the declaration as identity/rsu.py stores it.
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
_NUMERIC_ORDER = tuple(sorted(NUMERIC_FEATURES))
_CATEGORICAL_ORDER = tuple(sorted(CATEGORICAL_FEATURES))


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
    computed changes it, so a vector of the code before is derived again, never misread (a
    new Python release changes the bytecode too: the vectors are then derived once more)."""
    digest = hashlib.sha256()
    for name in (*_NUMERIC_ORDER, "", *_CATEGORICAL_ORDER, "", *_DURABLES, "", *sorted(_WORKING)):
        digest.update(name.encode() + b"\n")
    _code_digest(features.__code__, digest)
    _code_digest(_flag.__code__, digest)
    return digest.digest()


_VECTOR_HEADER = b"\x01" + catalogue_digest()[:4]
_NUMBERS = struct.Struct(f"<{len(_NUMERIC_ORDER)}d")
_NUMBERS_AT = len(_VECTOR_HEADER)
_STRINGS_AT = _NUMBERS_AT + _NUMBERS.size
_SEP = "\x1f"
_AREA, _REGION, _HEAD, _LEVELS = 0, 1, 2, 3  # positions among a vector's strings
_STRINGS = _LEVELS + len(_CATEGORICAL_ORDER)


def feature_vector(declaration: Mapping[str, Any]) -> bytes:
    """The feature vector of one declaration (see above). Raises :class:`InvalidRecord`, naming
    no value, when the declaration is malformed."""
    f = features(declaration)
    strings = (
        str(declaration.get("area")),
        str(declaration.get("region")),
        _head_idcs(declaration) or "",
        *(str(f[name]) for name in _CATEGORICAL_ORDER),
    )
    if any(_SEP in text for text in strings):
        raise InvalidRecord("household declaration is malformed")
    numbers = _NUMBERS.pack(*(float(f[name]) for name in _NUMERIC_ORDER))
    return _VECTOR_HEADER + numbers + _SEP.join(strings).encode()


def _current_vector(blob: bytes) -> bool:
    """Whether a stored vector is of this catalogue (else it is derived again)."""
    return blob.startswith(_VECTOR_HEADER)


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
        ).reshape(len(blobs), len(_NUMERIC_ORDER))
        strings = [blob[_STRINGS_AT:].decode().split(_SEP) for blob in blobs]
        if any(len(row) != _STRINGS for row in strings):
            raise IntegrityError("a stored feature vector is malformed")
        return cls(numbers, strings)


# -- models ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Variable:
    name: str
    kind: str  # "numeric" | "categorical"
    labels: Mapping[str, str]
    coefficient: float = 0.0
    levels: Mapping[str, float] | None = None


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidRecord(f"scoring model: {what} must be a finite number")
    return float(value)


def _labels(value: object, what: str) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(value.get(lang), str) and value.get(lang) for lang in LANGUAGES
    ):
        raise InvalidRecord(f"scoring model: {what} needs labels in ar, fr and en")
    return {lang: str(value[lang]) for lang in LANGUAGES}


class ScoringModel:
    """One area's coefficient set, loaded from its JSON file; immutable once loaded."""

    def __init__(self, raw: bytes, source: str = "<bytes>") -> None:
        self.digest = hashlib.sha256(raw).hexdigest()
        self.source = source
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise InvalidRecord("scoring model: not JSON") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise InvalidRecord(f"scoring model: format must be {FORMAT}")
        version, area = doc.get("version"), doc.get("area")
        if not isinstance(version, str) or not _VERSION.match(version):
            raise InvalidRecord("scoring model: version must match [a-z0-9][a-z0-9._-]{0,63}")
        if area not in ("urban", "rural"):
            raise InvalidRecord("scoring model: area must be urban or rural")
        decimals = doc.get("decimals")
        if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 12:
            raise InvalidRecord("scoring model: decimals must be an integer 0-12")
        self.version: str = version
        self.area: str = area
        self.decimals: int = decimals
        self.illustrative: bool = doc.get("illustrative") is not False
        self.intercept = _number(doc.get("intercept"), "intercept")
        variables: list[Variable] = []
        raw_vars = doc.get("variables")
        if not isinstance(raw_vars, list) or not raw_vars:
            raise InvalidRecord("scoring model: variables must be a non-empty list")
        for item in raw_vars:
            if not isinstance(item, dict) or item.get("name") not in FEATURES:
                raise InvalidRecord("scoring model: a variable is not in the feature catalogue")
            name = str(item["name"])
            if any(v.name == name for v in variables):
                raise InvalidRecord("scoring model: a variable is listed twice")
            labels = _labels(item.get("labels"), f"variable {name}")
            if name in CATEGORICAL_FEATURES:
                levels = item.get("levels")
                if item.get("kind") != "categorical" or not isinstance(levels, dict) or not levels:
                    raise InvalidRecord(f"scoring model: {name} needs categorical levels")
                variables.append(
                    Variable(
                        name,
                        "categorical",
                        labels,
                        levels={str(k): _number(v, f"{name} level") for k, v in levels.items()},
                    )
                )
            else:
                if item.get("kind") != "numeric":
                    raise InvalidRecord(f"scoring model: {name} is numeric")
                variables.append(
                    Variable(
                        name, "numeric", labels, coefficient=_number(item.get("coefficient"), name)
                    )
                )
        self.variables: tuple[Variable, ...] = tuple(variables)
        territorial = doc.get("territorial")
        if not isinstance(territorial, dict) or not isinstance(territorial.get("regions"), dict):
            raise InvalidRecord("scoring model: territorial.regions is required")
        self.territorial_labels = _labels(territorial.get("labels"), "territorial")
        self.territorial_default = _number(territorial.get("default", 0.0), "territorial default")
        self.regions: dict[str, float] = {
            str(k): _number(v, "territorial coefficient") for k, v in territorial["regions"].items()
        }
        # The design matrix: one column per numeric variable and per categorical level.
        columns: list[float] = []
        self._numeric: list[tuple[str, int]] = []
        self._categorical: list[tuple[str, dict[str, int]]] = []
        for var in self.variables:
            if var.levels is None:
                self._numeric.append((var.name, len(columns)))
                columns.append(var.coefficient)
            else:
                index = {}
                for level, coefficient in var.levels.items():
                    index[level] = len(columns)
                    columns.append(coefficient)
                self._categorical.append((var.name, index))
        self.beta = np.array(columns, dtype=np.float64)
        # Where a vector's numbers go in the design matrix (Vectors: catalogue order).
        self._vector_columns = np.array([col for _name, col in self._numeric], dtype=np.intp)
        self._vector_numbers = np.array(
            [_NUMERIC_ORDER.index(name) for name, _col in self._numeric], dtype=np.intp
        )
        self._vector_levels = [
            (_LEVELS + _CATEGORICAL_ORDER.index(name), name, index)
            for name, index in self._categorical
        ]
        self._quantum = Decimal(1).scaleb(-self.decimals)

    @classmethod
    def from_file(cls, path: Path | str) -> ScoringModel:
        p = Path(path)
        return cls(p.read_bytes(), str(p))

    def __repr__(self) -> str:
        return f"ScoringModel({self.version!r}, digest={self.digest[:12]}…)"

    def _region(self, declaration: Mapping[str, Any]) -> float:
        return self.regions.get(str(declaration.get("region")), self.territorial_default)

    def matrix(self, rows: Sequence[Mapping[str, float | str]]) -> np.ndarray[Any, Any]:
        """The design matrix of already computed :func:`features` rows."""
        n = len(rows)
        x = np.zeros((n, len(self.beta)), dtype=np.float64)
        # Column by column: one conversion of a list per variable, not one numpy item
        # assignment per cell.
        for name, col in self._numeric:
            x[:, col] = [f[name] for f in rows]
        everyone = np.arange(n)
        for name, index in self._categorical:
            columns = [index.get(str(f[name]), -1) for f in rows]
            if -1 in columns:
                raise InvalidRecord(f"household declaration: unknown level for {name}")
            x[everyone, columns] = 1.0
        return x

    def matrix_of(self, vectors: Vectors) -> np.ndarray[Any, Any]:
        """The design matrix of decoded feature vectors: the same matrix :meth:`matrix` builds
        from the same declarations' features (tested equal)."""
        rows = vectors.strings
        n = len(rows)
        x = np.zeros((n, len(self.beta)), dtype=np.float64)
        x[:, self._vector_columns] = vectors.numbers[:, self._vector_numbers]
        everyone = np.arange(n)
        for position, name, index in self._vector_levels:
            columns = [index.get(row[position], -1) for row in rows]
            if -1 in columns:
                raise InvalidRecord(f"household declaration: unknown level for {name}")
            x[everyone, columns] = 1.0
        return x

    def scores_of(self, vectors: Vectors) -> list[str]:
        """The published scores of decoded feature vectors (as :meth:`scores` of their
        declarations)."""
        regions, default = self.regions, self.territorial_default
        territorial = np.fromiter(
            (regions.get(row[_REGION], default) for row in vectors.strings),
            np.float64,
            count=len(vectors.strings),
        )
        raw = self.matrix_of(vectors) @ self.beta + territorial + self.intercept
        return [self.quantise(float(v)) for v in raw]

    def raw_scores(self, declarations: Sequence[Mapping[str, Any]]) -> np.ndarray[Any, Any]:
        """Unrounded index of each declaration: intercept + X·β + territorial coefficient."""
        x = self.matrix([features(d) for d in declarations])
        territorial = np.fromiter(
            (self._region(d) for d in declarations), np.float64, count=len(declarations)
        )
        result: np.ndarray[Any, Any] = x @ self.beta + territorial + self.intercept
        return result

    def quantise(self, value: float) -> str:
        """The published form of a score: ``decimals`` places, rounded half-even from the
        exact binary value (Decimal(float) is exact), as decimal text."""
        return str(Decimal(value).quantize(self._quantum))

    def scores(self, declarations: Sequence[Mapping[str, Any]]) -> list[str]:
        return [self.quantise(float(v)) for v in self.raw_scores(declarations)]

    def contributions(self, declaration: Mapping[str, Any]) -> list[tuple[Variable, object, float]]:
        f = features(declaration)
        out: list[tuple[Variable, object, float]] = []
        for var in self.variables:
            value = f[var.name]
            if var.levels is None:
                out.append((var, value, var.coefficient * float(value)))
            else:
                if value not in var.levels:
                    raise InvalidRecord(f"household declaration: unknown level for {var.name}")
                out.append((var, value, var.levels[str(value)]))
        return out


class ModelSet:
    """The urban and the rural model of one release (e.g. ``v1``: urban-v1 + rural-v1)."""

    def __init__(self, urban: ScoringModel, rural: ScoringModel, name: str | None = None) -> None:
        if urban.area != "urban" or rural.area != "rural":
            raise InvalidRecord("a model set needs an urban and a rural model")
        self.urban = urban
        self.rural = rural
        self.name = name or f"{urban.version}+{rural.version}"

    @classmethod
    def load(cls, version: str, directory: Path | str | None = None) -> ModelSet:
        """``<directory>/urban-<version>.json`` and ``rural-<version>.json`` (default: the
        illustrative models shipped in vault/scoring_models/)."""
        if not _VERSION.match(version):
            raise InvalidRecord("model version must match [a-z0-9][a-z0-9._-]{0,63}")
        base = Path(directory) if directory is not None else MODELS_DIR
        if base not in _DIRS:
            _DIRS.append(base)  # where explain() may find this release again by digest
        models = []
        for area in ("urban", "rural"):
            path = base / f"{area}-{version}.json"
            if not path.is_file():
                raise InvalidRecord(f"no {area} model file for version {version}")
            model = ScoringModel.from_file(path)
            if model.area != area or model.version != f"{area}-{version}":
                raise InvalidRecord(f"{path.name} does not declare version {area}-{version}")
            models.append(model)
        return cls(models[0], models[1], version)

    def for_area(self, area: object) -> ScoringModel:
        if area == "urban":
            return self.urban
        if area == "rural":
            return self.rural
        raise InvalidRecord("household declaration: area must be urban or rural")

    def __iter__(self) -> Iterator[ScoringModel]:
        return iter((self.urban, self.rural))


Models = ModelSet | ScoringModel


def _select(models: Models, area: object) -> ScoringModel:
    if isinstance(models, ModelSet):
        return models.for_area(area)
    if models.area != area:
        raise InvalidRecord("this model is for the other area (urban/rural)")
    return models


# -- results ---------------------------------------------------------------------------------
class ScoreEvent(NamedTuple):
    """What the caller may record about one scoring (audit entry): no score, no value.

    ``inputs_digest`` is a keyed MAC of the feature vector as scored (every variable the models
    read, the area, the region and the head): it proves which inputs were used without being
    invertible by anyone outside the vault (a plain hash of a small declaration could be
    brute-forced).
    """

    subject: str
    model_version: str
    model_digest: str
    inputs_digest: str
    scored_at_ns: int
    # subject_tag of the head's IDCS: the entry shows in the head's own access log.
    head_tag: str | None = None


class _Scored(NamedTuple):
    # The encrypted score, and the feature vector when it was derived for this score:
    # (subject, field, ciphertext) rows.
    rows: list[tuple[str, str, bytes]]
    event: ScoreEvent
    # What the score was computed from: _FROM_VECTOR or _FROM_DECLARATION, then the header and
    # nonce of that ciphertext.
    source: bytes


class ScoredBatch:
    """Scores computed and encrypted by :meth:`Vault.score_compute`, not yet stored: sealed
    (the caller sees the events, never a ciphertext), to be handed to
    :meth:`Vault.score_store`. Picklable, so a worker process can compute it and a writer
    process store it."""

    __slots__ = ("_computed", "_gone", "_legacy", "_since")

    def __init__(
        self,
        computed: dict[str, _Scored],
        since: int | None = None,
        legacy: Sequence[str] = (),
        *,
        gone: Sequence[str] | None = None,
    ) -> None:
        self._computed = computed
        # The declaration-rewrite count read before the declarations (None: unknown).
        self._since = since
        # Households whose score is still in the earlier three-field form.
        self._legacy = list(legacy)
        # Households left out because their record was erased or unknown (None: not skipped,
        # refused: the batch was computed without ``skip_gone``).
        self._gone = None if gone is None else list(gone)

    def __len__(self) -> int:
        return len(self._computed)

    # Pickled as plain tuples and lists, which pickle handles in C (named tuples take a
    # Python-level call each): a rescoring hands over a batch of thousands.
    def __getstate__(self) -> tuple[Any, ...]:
        scored = [(rows, tuple(event), source) for rows, event, source in self._computed.values()]
        return scored, self._since, self._legacy, self._gone

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        scored, self._since, self._legacy, self._gone = state
        self._computed = {
            event[0]: _Scored(rows, ScoreEvent._make(event), source)
            for rows, event, source in scored
        }

    @property
    def events(self) -> list[ScoreEvent]:
        return [entry.event for entry in self._computed.values()]

    @property
    def gone(self) -> list[str]:
        """Households left out, their record erased or unknown (``skip_gone``)."""
        return list(self._gone or ())


@dataclass(frozen=True)
class Contribution:
    variable: str
    label: str
    value: object  # the household's own value of the variable (a number or a level)
    contribution: str  # decimal text, the model's decimals


@dataclass(frozen=True)
class Explanation:
    score: str
    model_version: str
    model_digest: str
    illustrative: bool
    intercept: str
    territorial: Contribution
    contributions: list[Contribution]
    language: str


# Models seen by this process, by digest: an explanation recomputes with the very model that
# produced the stored score (digest match), never with whatever is current.
_KNOWN: dict[str, ScoringModel] = {}
# Directories model files were loaded from in this process (the shipped one first).
_DIRS: list[Path] = [MODELS_DIR]


def _remember(models: Models) -> None:
    for model in models if isinstance(models, ModelSet) else (models,):
        _KNOWN.setdefault(model.digest, model)


def _model_by_digest(version: str, digest: str) -> ScoringModel:
    model = _KNOWN.get(digest)
    if model is None and _VERSION.match(version):
        for directory in _DIRS:
            path = directory / f"{version}.json"
            if path.is_file():
                candidate = ScoringModel.from_file(path)
                if candidate.digest == digest:
                    model = _KNOWN.setdefault(digest, candidate)
                    break
    if model is None:
        raise NotScored("the model that produced this score is not loaded")
    return model


# -- the vault side --------------------------------------------------------------------------
class HouseholdScoring:
    """Scoring operations of one :class:`~vault.core.Vault` (exposed as its methods)."""

    def __init__(self, vault: Vault) -> None:
        self._vault = vault

    def _read(
        self,
        conn: Connection,
        chunk: Sequence[str],
        names: Sequence[str],
        *,
        raw: dict[tuple[str, str], bytes] | None = None,
        decode: bool = True,
        legacy: set[str] | None = None,
        gone: set[str] | None = None,
    ) -> tuple[dict[str, dict[str, object]], dict[str, tuple[int, AESGCM]]]:
        """Decrypt ``names`` of household records; also the current data key of each (one
        statement reads them all: :meth:`Vault._chunk_rows`). ``raw`` receives the ciphertexts
        of ``names``; without ``decode`` the values are typed plaintexts (``Vault._decrypt``).
        ``gone`` receives the subjects erased or unknown, which are then left out rather than
        refused."""
        v = self._vault
        # ``legacy`` receives the subjects that still have a three-field score: read in the
        # same statement (their rows sit beside the declaration's), not decrypted.
        fetched = names if legacy is None else (*names, *_LEGACY_SCORE_FIELDS)
        rows, kinds = v._chunk_rows(conn, chunk, fetched)
        if gone is not None:
            status = rows.status
            lost = {s for s in chunk if s not in status or status[s] is not None}
            if lost:
                gone.update(lost)
                chunk = [s for s in chunk if s not in lost]
                rows = replace(
                    rows,
                    subjects=tuple(chunk),
                    fields=[row for row in rows.fields if row[0] not in lost],
                )
        if legacy is not None:
            legacy.update(s for s, field, _c in rows.fields if field in _LEGACY_SCORE_FIELDS)
        for subject in chunk:
            if subject not in rows.status:
                raise UnknownSubject("no record for this subject")
            if rows.status[subject] is not None:
                raise Erased("this subject's data was erased")
            if kinds[subject] != "household":
                raise InvalidRecord("only a household record can be scored")
        return self._open(conn, rows, names, raw=raw, decode=decode)

    def _open(
        self,
        conn: Connection,
        rows: _SubjectRows,
        names: Sequence[str],
        *,
        raw: dict[tuple[str, str], bytes] | None = None,
        decode: bool = True,
    ) -> tuple[dict[str, dict[str, object]], dict[str, tuple[int, AESGCM]]]:
        """The rest of :meth:`_read`, for rows read already: decrypt ``names``, and unwrap the
        current data key of each subject."""
        v = self._vault
        chunk = rows.subjects
        aeads: dict[tuple[str, int], AESGCM] = {}
        out = v._decrypt(conn, rows, {s: set(names) for s in chunk}, aeads, decode=decode)
        if raw is not None:
            raw.update(((s, field), c) for s, field, c in rows.fields if field in names)
        key_rows = rows.keys
        current: dict[str, tuple[int, AESGCM]] = {}
        for subject in chunk:
            versions = key_rows.get(subject)
            if not versions:
                raise IntegrityError("household record has no data key")
            version = max(versions)
            aead = aeads.get((subject, version))
            if aead is None:  # no field read was sealed under the current key
                aead = aeads[(subject, version)] = v._unwrap(
                    conn, subject, version, versions[version]
                )
            current[subject] = (version, aead)
        return out, current

    def score(self, subject: str, models: Models) -> ScoreEvent:
        return self.score_many([subject], models)[0]

    def score_many(
        self,
        subjects: Sequence[str],
        models: Models,
        *,
        write_guard: AbstractContextManager[Any] | None = None,
    ) -> list[ScoreEvent]:
        """Score households and store each score encrypted, in one write transaction:
        :meth:`compute` then :meth:`store`.

        ``write_guard`` (a lock shared by cooperating writer processes) is held around the
        write transaction only: a process queued on it wakes as soon as it is released, where
        SQLite's busy handler would sleep and poll for the file lock.
        """
        return self.store(self.compute(subjects, models), models, write_guard=write_guard)

    def compute(
        self, subjects: Sequence[str], models: Models, *, skip_gone: bool = False
    ) -> ScoredBatch:
        """Decrypt the declarations, score them and encrypt the scores, writing nothing: the
        result is sealed, to be handed to :meth:`store` (in this process or another one with a
        vault on the same store). Reads only, so it runs beside any writer.

        ``skip_gone``: a household whose record was erased (dissolved meanwhile) or is unknown
        is left out, in :attr:`ScoredBatch.gone`, and so is one erased before the store,
        rather than failing the whole batch (a national rescoring decides what that means)."""
        _remember(models)
        ordered = list(dict.fromkeys(subjects))
        # Load (or create) the root secret behind the MACs now: creating it inside a write
        # transaction would wait on our own SQLite write lock.
        self._vault._root_secret()
        computed: dict[str, _Scored] = {}
        since: int | None = None
        legacy: set[str] = set()
        gone: set[str] | None = set() if skip_gone else None
        if ordered:
            with self._vault._engine.connect() as conn:
                # Before the declarations: if the count has not moved when the batch is
                # stored, none of what is read below has been rewritten since.
                since = declaration_writes(conn)
                for chunk in chunks(ordered):
                    computed.update(self._compute(conn, chunk, models, legacy=legacy, gone=gone))
        return ScoredBatch(
            computed,
            since,
            [s for s in ordered if s in legacy],
            gone=None if gone is None else [s for s in ordered if s in gone],
        )

    def store(
        self,
        batch: ScoredBatch,
        models: Models,
        *,
        conn: Connection | None = None,
        write_guard: AbstractContextManager[Any] | None = None,
    ) -> list[ScoreEvent]:
        """Write a :meth:`compute` result; returns one event per household, in its order.

        Checks first, under the write lock, that no declaration changed since it was scored
        (a membership change, :meth:`amend_members`) and scores those again: their events are
        new ones. Scoring the same inputs with the same model again writes the same values
        (idempotent), so a batch interrupted between here and its caller's bookkeeping can
        simply be redone.

        ``conn``: a write transaction the caller opened on this vault's database (and
        commits); without it, the write is a transaction of its own.
        """
        _remember(models)
        computed = dict(batch._computed)
        if not computed:
            return []
        self._vault._root_secret()  # before any lock: a stale declaration is scored again
        if conn is None:
            with write_guard or nullcontext(), self._vault._write() as own:
                self._store(own, computed, models, batch)
        else:
            self._vault._write_lock(conn)
            self._store(conn, computed, models, batch)
        return [entry.event for entry in computed.values()]

    def _store(
        self, conn: Connection, computed: dict[str, _Scored], models: Models, batch: ScoredBatch
    ) -> None:
        since = batch._since
        if since is not None and declaration_writes(conn, lock=True) == since:
            # No declaration was rewritten since the batch read them: nothing to score again.
            legacy = batch._legacy
        else:
            legacy = self._rescore_stale(conn, computed, models, skip_gone=batch._gone is not None)
        _upsert_own(conn, [row for scored in computed.values() for row in scored.rows])
        for chunk in chunks(legacy):
            conn.execute(
                delete(t.fields).where(
                    among(conn, t.fields.c.subject, chunk),
                    t.fields.c.field.in_(_LEGACY_SCORE_FIELDS),
                )
            )

    def _rescore_stale(
        self,
        conn: Connection,
        computed: dict[str, _Scored],
        models: Models,
        *,
        skip_gone: bool = False,
    ) -> list[str]:
        """Score again, in ``computed``, the households whose declaration was rewritten since
        it was computed; returns the households that still hold a three-field score. With
        ``skip_gone``, one erased since is dropped from ``computed`` (see :meth:`compute`)."""
        ordered = list(computed)
        # A declaration rewritten since (amend_household) has a new random nonce, and its
        # feature vector is deleted with it: the header and nonce of what each score was
        # computed from tell it apart, without reading a whole ciphertext again. The same read
        # finds the records that still hold a score in the earlier three-field form.
        current: dict[str, bytes] = {}
        legacy: dict[str, None] = {}
        for chunk in chunks(ordered):
            for subject, head in conn.execute(
                select(
                    t.features.c.subject, func.substr(t.features.c.ciphertext, 1, _NONCE_END)
                ).where(among(conn, t.features.c.subject, chunk))
            ).all():
                current[subject] = _FROM_VECTOR + bytes(head)
            for subject, name, head in conn.execute(
                select(
                    t.fields.c.subject,
                    t.fields.c.field,
                    func.substr(t.fields.c.ciphertext, 1, _NONCE_END),
                ).where(
                    among(conn, t.fields.c.subject, chunk),
                    t.fields.c.field.in_(("declaration", *_LEGACY_SCORE_FIELDS)),
                )
            ).all():
                if name == "declaration":
                    # A score computed from the declaration compares with the declaration.
                    if computed[subject].source[:1] == _FROM_DECLARATION:
                        current[subject] = _FROM_DECLARATION + bytes(head)
                else:
                    legacy[subject] = None
        stale = [s for s in ordered if current.get(s) != computed[s].source]
        gone: set[str] | None = set() if skip_gone else None
        for chunk in chunks(stale):
            computed.update(self._compute(conn, chunk, models, gone=gone))
        for subject in gone or ():
            del computed[subject]
        return [s for s in legacy if s in computed]

    def _compute(
        self,
        conn: Connection,
        chunk: Sequence[str],
        models: Models,
        *,
        legacy: set[str] | None = None,
        gone: set[str] | None = None,
    ) -> dict[str, _Scored]:
        """Per subject: the encrypted score rows (and the feature vector's, when it was derived
        here), the event, and the source the score was computed from. ``gone``: see
        :meth:`_read`."""
        v = self._vault
        raw: dict[tuple[str, str], bytes] = {}
        rows = self._vector_rows(conn, chunk)
        plain, keys = self._open(conn, rows, (FEATURES_FIELD,), raw=raw, decode=False)
        blobs: dict[str, bytes] = {}
        sources: dict[str, bytes] = {}
        derive: list[str] = []
        for subject in chunk:
            typed = plain.get(subject, {}).get(FEATURES_FIELD)
            if isinstance(typed, bytes) and typed[:1] == _BYTES and _current_vector(typed[1:]):
                blobs[subject] = typed[1:]
                sources[subject] = _FROM_VECTOR + raw[(subject, FEATURES_FIELD)][:_NONCE_END]
            else:
                derive.append(subject)
        derived = self._derive(conn, derive, blobs, sources, keys, legacy=legacy, gone=gone)
        if gone:
            chunk = [s for s in chunk if s not in gone]
        now = v._clock()
        ordered = [blobs[s] for s in chunk]
        vectors = Vectors.decode(ordered)
        by_model: dict[str, tuple[ScoringModel, list[int]]] = {}
        for i, row in enumerate(vectors.strings):
            model = _select(models, row[_AREA])
            by_model.setdefault(model.digest, (model, []))[1].append(i)
        scored: list[tuple[ScoringModel, str] | None] = [None] * len(chunk)
        for model, positions in by_model.values():
            part = Vectors(vectors.numbers[positions], [vectors.strings[i] for i in positions])
            for i, value in zip(positions, model.scores_of(part), strict=True):
                scored[i] = (model, value)
        out: dict[str, _Scored] = {}
        for i, subject in enumerate(chunk):
            result = scored[i]
            assert result is not None
            model, value = result
            key_id, aead = keys[subject]
            values: dict[str, object] = {SCORE_FIELD: f"{value} {model.version} {model.digest}"}
            if subject in derived:
                values[FEATURES_FIELD] = ordered[i]
            head = vectors.strings[i][_HEAD]
            event = ScoreEvent(
                subject=subject,
                model_version=model.version,
                model_digest=model.digest,
                inputs_digest=v.mac(_INPUTS_LABEL, ordered[i]).hex(),
                scored_at_ns=now,
                head_tag=v.subject_tag(head) if head else None,
            )
            out[subject] = _Scored(encrypt_record(aead, key_id, subject, values), event,
                                   sources[subject])  # fmt: skip
        return out

    def _vector_rows(self, conn: Connection, chunk: Sequence[str]) -> _SubjectRows:
        """The stored feature vectors of ``chunk`` and their records' data keys, in one
        statement that reads neither the subjects' table nor vault_fields: a vector exists
        only on a household record that is not erased (the scoring writes it on household
        records only; erasure deletes it with the keys, in one transaction, and one statement
        sees one snapshot). A subject without one is not in the rows; :meth:`_derive` reads
        it in full (and so tells an erased, unknown or other record)."""
        from vault.core import _SubjectRows  # vault.core imports this module

        keys: dict[str, dict[int, bytes]] = {}
        fields: dict[str, bytes] = {}
        for subject, version, wrapped, ciphertext in conn.execute(
            t.own_field_query(FEATURES_FIELD, lambda column: among(conn, column, chunk))
        ):
            keys.setdefault(subject, {})[version] = bytes(wrapped)
            fields[subject] = ciphertext if type(ciphertext) is bytes else bytes(ciphertext)
        present = tuple(s for s in chunk if s in fields)
        return _SubjectRows(
            present,
            dict.fromkeys(present),
            keys,
            [(s, FEATURES_FIELD, fields[s]) for s in present],
        )

    def _derive(
        self,
        conn: Connection,
        chunk: Sequence[str],
        blobs: dict[str, bytes],
        sources: dict[str, bytes],
        keys: dict[str, tuple[int, AESGCM]],
        *,
        legacy: set[str] | None = None,
        gone: set[str] | None = None,
    ) -> set[str]:
        """The feature vectors of households that have none (never scored by this release, or
        their declaration rewritten since), derived from their declaration into ``blobs``;
        returns those households; ``keys`` receives their current data keys. The legacy
        three-field scores are found here: a record holding one has never had a vector (the
        store that writes a vector deletes them)."""
        if not chunk:
            return set()
        raw: dict[tuple[str, str], bytes] = {}
        # The declaration's UTF-8 as decrypted: parsed as it is, never decoded into a str.
        plain, current = self._read(
            conn, chunk, ("declaration",), raw=raw, decode=False, legacy=legacy, gone=gone
        )
        keys.update(current)
        derived: set[str] = set()
        for subject in chunk:
            if gone and subject in gone:
                continue
            typed = plain[subject].get("declaration")
            if not isinstance(typed, bytes) or typed[:1] != _TEXT:
                raise InvalidRecord("household record has no declaration")
            blobs[subject] = feature_vector(_declaration(typed[1:]))
            sources[subject] = _FROM_DECLARATION + raw[(subject, "declaration")][:_NONCE_END]
            derived.add(subject)
        return derived

    def amend_members(
        self,
        subject: str,
        *,
        add: Sequence[Mapping[str, object]] = (),
        remove: Sequence[str] = (),
        new_head: str | None = None,
    ) -> int:
        """Change a household's membership inside the vault (birth, death, departure, split)
        and return its new size; the caller rescores. Members are matched by IDCS, which only
        the vault holds next to the declaration. A departing head needs ``new_head``."""
        v = self._vault
        with v._write() as conn:
            count_declaration_write(conn)
            plain, keys = self._read(conn, [subject], ("members", "declaration"))
            record = plain[subject]
            members_text, text = record.get("members"), record.get("declaration")
            if not isinstance(members_text, str) or not isinstance(text, str):
                raise InvalidRecord("household record has no members or declaration")
            members: list[dict[str, Any]] = json.loads(members_text)
            declaration = _declaration(text)
            detail: list[dict[str, Any]] = declaration.get("members", [])
            gone = set(remove)
            known = {m.get("idcs") for m in members}
            if not gone <= known:
                raise InvalidRecord("a member to remove is not in this household")
            head_leaves = any(
                m.get("relation") == "head" and m.get("idcs") in gone for m in members
            )
            members = [m for m in members if m.get("idcs") not in gone]
            detail = [m for m in detail if m.get("idcs") not in gone]
            for new in add:
                if new.get("idcs") in known - gone or new.get("relation") == "head":
                    raise InvalidRecord("an added member is already here or claims to be head")
                members.append({"idcs": new.get("idcs"), "relation": new.get("relation")})
                detail.append(dict(new))
            if new_head is not None or head_leaves:
                if new_head is None or new_head not in {m.get("idcs") for m in members}:
                    raise InvalidRecord("the household needs a head among its members")
                for row in (*members, *detail):
                    if row.get("relation") == "head":
                        row["relation"] = "other_relative"
                    if row.get("idcs") == new_head:
                        row["relation"] = "head"
            if not members:
                raise InvalidRecord("a household cannot be left without members")
            if len(members) > 100:
                raise InvalidRecord("household: above 100 members")
            declaration["members"] = detail
            (head,) = (str(m["idcs"]) for m in members if m.get("relation") == "head")
            values: dict[str, object] = {
                "members": json.dumps(members, separators=(",", ":")),
                "declaration": json.dumps(declaration, ensure_ascii=False, separators=(",", ":")),
                "size": len(members),
                "head": head,
            }
            validate("household", values)
            key_id, aead = keys[subject]
            t.write_fields(
                conn,
                encrypt_record(aead, key_id, subject, values),
                [(subject, name) for name in values],
            )
            return len(members)

    def eligible(
        self, subject: str, threshold: Decimal | str, decision: Decision, *, comparison: str = "lte"
    ) -> bool:
        """Whether the household's score is at or below ``threshold`` (``lte``; ``lt`` for a
        strict rule). Needs a valid decision for the action ``eligibility`` about ``subject``;
        answers a boolean and nothing else."""
        v = self._vault
        v._verifier.verify(decision, subject, now_ns=v._clock())
        if decision.action != "eligibility":
            raise DecisionRefused("decision is not for an eligibility answer")
        if comparison not in ("lte", "lt"):
            raise VaultError("comparison must be lte or lt")
        limit = _decimal(threshold)
        kind, plain = v._read_one(subject, (SCORE_FIELD,))  # one read: the agency hot path
        if kind != "household":
            raise InvalidRecord("only a household record can be scored")
        score = _decimal(_score_index(plain))
        return score <= limit if comparison == "lte" else score < limit

    def explain(
        self, subject: str, decision: Decision, *, language: str = "fr",
        models: Models | None = None,
    ) -> Explanation:  # fmt: skip
        """Each variable's contribution to the household's stored score, labelled in
        ``language`` (ar, fr or en): for a member reading their own score (action
        ``read_score``), never for an agency."""
        v = self._vault
        v._verifier.verify(decision, subject, now_ns=v._clock())
        if decision.action != "read_score":
            raise DecisionRefused("decision is not for reading one's own score")
        if language not in LANGUAGES:
            language = "fr"
        with v._engine.connect() as conn:
            plain, _ = self._read(
                conn, [subject], ("declaration", SCORE_FIELD, *_LEGACY_SCORE_FIELDS)
            )
        record = plain[subject]
        score, version, digest = _stored_score(record)
        text = record.get("declaration")
        if not isinstance(text, str):
            raise InvalidRecord("household record has no declaration")
        if models is not None:
            _remember(models)
        model = _model_by_digest(version, digest)
        declaration = _declaration(text)
        q = model.quantise
        region = str(declaration.get("region"))
        return Explanation(
            score=score,
            model_version=model.version,
            model_digest=model.digest,
            illustrative=model.illustrative,
            intercept=q(model.intercept),
            territorial=Contribution("region", model.territorial_labels[language], region,
                                     q(model._region(declaration))),
            contributions=[
                Contribution(var.name, var.labels[language],
                             round(value, 4) if isinstance(value, float) else value, q(c))
                for var, value, c in model.contributions(declaration)
            ],
            language=language,
        )  # fmt: skip


def _stored_score(record: Mapping[str, object]) -> tuple[str, str, str]:
    """(index, model version, model digest) of a household's stored score, in the current
    one-field form or the earlier three-field one."""
    stored = record.get(SCORE_FIELD)
    if isinstance(stored, str):
        parts = stored.split(" ")
        if len(parts) == 3:
            return parts[0], parts[1], parts[2]
        version, digest = (record.get(n) for n in _LEGACY_SCORE_FIELDS)
        if len(parts) == 1 and isinstance(version, str) and isinstance(digest, str):
            return stored, version, digest
    raise NotScored("this household has no score yet")


def _score_index(record: Mapping[str, object]) -> str:
    """The index alone (eligibility reads the ``score`` field only), in either form."""
    stored = record.get(SCORE_FIELD)
    if not isinstance(stored, str):
        raise NotScored("this household has no score yet")
    return stored.partition(" ")[0]


def _declaration(text: str | bytes) -> dict[str, Any]:
    """A stored declaration (JSON text, as identity/rsu.py writes it; or its UTF-8, which
    orjson checks). orjson: a rescoring parses one per household, at a quarter of the standard
    library's cost."""
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


def _decimal(value: Decimal | str) -> Decimal:
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, str):
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise VaultError("a threshold is a decimal number") from None
    else:
        # A float threshold would already carry binary rounding: refuse it.
        raise VaultError("a threshold is a Decimal or decimal text, never a float")
    if not result.is_finite():
        raise VaultError("a threshold is a finite decimal number")
    return result


_SQLITE_UPSERT = (
    "INSERT INTO {table} (subject, ciphertext) VALUES (?, ?) "
    "ON CONFLICT (subject) DO UPDATE SET ciphertext = excluded.ciphertext"
)
_PG_UPSERT = (
    "INSERT INTO {table} (subject, ciphertext) "
    "SELECT * FROM unnest(%(s)b::text[], %(c)b::bytea[]) "
    "ON CONFLICT (subject) DO UPDATE SET ciphertext = EXCLUDED.ciphertext"
)


def _upsert_own(conn: Connection, rows: Sequence[tuple[str, str, bytes]]) -> None:
    """Insert or replace (subject, field, ciphertext) rows of fields kept in a table of their
    own (vault.tables.OWN_TABLES: the score, the feature vector): one statement a table, the
    rows handed to the driver as they are (SQLite's executemany loops in C; PostgreSQL gets two
    arrays that ``unnest`` turns back into rows, sent in binary: no hex text of every
    ciphertext), with none of SQLAlchemy's per-row parameter processing."""
    for name, table in t.OWN_TABLES.items():
        found = [(subject, c) for subject, field, c in rows if field == name]
        if not found:
            continue
        if conn.dialect.name == "postgresql":
            subjects, ciphertexts = (list(c) for c in zip(*found, strict=True))
            statement = _PG_UPSERT.format(table=table.name)
            conn.exec_driver_sql(statement, {"s": subjects, "c": ciphertexts})
        else:
            conn.exec_driver_sql(_SQLITE_UPSERT.format(table=table.name), found)
