"""RSU socio-economic scoring, inside the vault.

Owns: the feature catalogue and feature vectors (``features``), the scoring models and their
arithmetic (``model``: pure numpy, no store, no keys), batch scoring of households
(``service``) and the per-household operations: membership changes, eligibility answers and
explanations (``household``).

May import: the vault's own ``records``, ``derive``, ``envelope``, ``tables``, ``schema``,
``decision`` and ``errors``; storekit; numpy and orjson. Never ``vault.core``: the ``Vault``
facade builds these services, they do not call back into it.

The name ``features`` here is the module; the function is ``vault.scoring.features.features``.

Must never: hand a caller a score, a declared value or a ciphertext other than through the
decision-checked answers of ``household``; evaluate anything from a model file.
"""

from vault.scoring.features import FEATURES, Vectors, catalogue_digest, feature_vector
from vault.scoring.household import SCORE_FIELD, EligibilityAsk, HouseholdOperations
from vault.scoring.model import (
    MODELS_DIR,
    Contribution,
    Explanation,
    Models,
    ModelSet,
    NotScored,
    ScoringModel,
)
from vault.scoring.service import HouseholdScoring, ScoredBatch, ScoreEvent

__all__ = [
    "FEATURES",
    "MODELS_DIR",
    "SCORE_FIELD",
    "Contribution",
    "EligibilityAsk",
    "Explanation",
    "HouseholdOperations",
    "HouseholdScoring",
    "ModelSet",
    "Models",
    "NotScored",
    "ScoreEvent",
    "ScoredBatch",
    "ScoringModel",
    "Vectors",
    "catalogue_digest",
    "feature_vector",
]
