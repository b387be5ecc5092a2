"""RSU scoring models: coefficient sets loaded from versioned JSON files, applied with numpy.

A model is a versioned JSON file (see vault/scoring_models/ and docs/scoring.md): an intercept,
per-variable coefficients (numeric, or one per level for a categorical variable) and territorial
(region) coefficients. Its SHA-256 over the exact file bytes is its digest and is stored with
every score, so a score can always be traced to the coefficients that produced it.

Scores are quantised to the model's published decimals (7, as the programs' thresholds
9.743001 and 9.3264284) and stored as decimal text, so binary floating point never decides a
boundary case. Pure computation: no store, no keys.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from vault.errors import InvalidRecord, VaultError
from vault.scoring.features import (
    CATEGORICAL_FEATURES,
    CATEGORICAL_ORDER,
    FEATURES,
    LEVELS,
    NUMERIC_ORDER,
    REGION,
    Vectors,
    features,
)

__all__ = [
    "LANGUAGES",
    "MODELS_DIR",
    "Contribution",
    "Explanation",
    "ModelSet",
    "Models",
    "NotScored",
    "ScoringModel",
    "Variable",
    "explanation",
    "model_by_digest",
    "remember",
    "select_model",
]

MODELS_DIR = Path(__file__).parent.parent / "scoring_models"
FORMAT = "sijill-pmt/1"
LANGUAGES = ("ar", "fr", "en")
_VERSION = re.compile(r"\A[a-z0-9][a-z0-9._\-]{0,63}\Z")


class NotScored(VaultError):
    """The household has no score yet (or its model is not loaded for an explanation)."""


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
            [NUMERIC_ORDER.index(name) for name, _col in self._numeric], dtype=np.intp
        )
        self._vector_levels = [
            (LEVELS + CATEGORICAL_ORDER.index(name), name, index)
            for name, index in self._categorical
        ]
        self._quantum = Decimal(1).scaleb(-self.decimals)

    @classmethod
    def from_file(cls, path: Path | str) -> ScoringModel:
        p = Path(path)
        return cls(p.read_bytes(), str(p))

    def __repr__(self) -> str:
        return f"ScoringModel({self.version!r}, digest={self.digest[:12]}…)"

    def region_of(self, declaration: Mapping[str, Any]) -> float:
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
            (regions.get(row[REGION], default) for row in vectors.strings),
            np.float64,
            count=len(vectors.strings),
        )
        raw = self.matrix_of(vectors) @ self.beta + territorial + self.intercept
        return [self.quantise(float(v)) for v in raw]

    def raw_scores(self, declarations: Sequence[Mapping[str, Any]]) -> np.ndarray[Any, Any]:
        """Unrounded index of each declaration: intercept + X·β + territorial coefficient."""
        x = self.matrix([features(d) for d in declarations])
        territorial = np.fromiter(
            (self.region_of(d) for d in declarations), np.float64, count=len(declarations)
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


def select_model(models: Models, area: object) -> ScoringModel:
    if isinstance(models, ModelSet):
        return models.for_area(area)
    if models.area != area:
        raise InvalidRecord("this model is for the other area (urban/rural)")
    return models


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


def remember(models: Models) -> None:
    for model in models if isinstance(models, ModelSet) else (models,):
        _KNOWN.setdefault(model.digest, model)


def model_by_digest(version: str, digest: str) -> ScoringModel:
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


def explanation(
    model: ScoringModel, declaration: Mapping[str, Any], score: str, language: str
) -> Explanation:
    """Each variable's contribution to ``score``, the stored score ``model`` gave
    ``declaration``, labelled in ``language``."""
    q = model.quantise
    region = str(declaration.get("region"))
    return Explanation(
        score=score,
        model_version=model.version,
        model_digest=model.digest,
        illustrative=model.illustrative,
        intercept=q(model.intercept),
        territorial=Contribution("region", model.territorial_labels[language], region,
                                 q(model.region_of(declaration))),
        contributions=[
            Contribution(var.name, var.labels[language],
                         round(value, 4) if isinstance(value, float) else value, q(c))
            for var, value, c in model.contributions(declaration)
        ],
        language=language,
    )  # fmt: skip
