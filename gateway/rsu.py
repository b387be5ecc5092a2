"""RSU wiring: the household register the gateway and the CLI build, and the audit entries of
scoring (one per household scored: model version, model digest, keyed digest of the inputs;
never the score or a declared value).

The vault scores but may not import the audit log; this is where its :class:`vault.ScoreEvent`
become audit entries.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from audit import AuditEntry, AuditLog, EntryTemplate
from audit.storage import StoredEntry
from gateway.settings import Settings
from vault import Decision, Explanation, ModelSet, ScoreEvent, Vault

if TYPE_CHECKING:  # the register is built by the gateway; scoring's audit entries need none of it
    from identity import Register
    from rsu import HouseholdRegister

__all__ = [
    "SCORE_ACTION",
    "SCORE_PURPOSE",
    "build_household_register",
    "eligible",
    "load_models",
    "own_score",
    "prepared_score_entries",
    "score_entries",
    "score_view",
]

SCORE_ACTION = "rsu_score"
SCORE_PURPOSE = "rsu_scoring"
SCORE_FIELDS = ["score", "score_model", "score_model_digest"]
SYSTEM_ACTOR: dict[str, Any] = {"kind": "system", "id": "rsu-scoring", "sector": None}


def load_models(settings: Settings, version: str | None = None) -> ModelSet:
    return ModelSet.load(version or settings.scoring_model, settings.scoring_models_dir)


def score_entries(
    vault: Vault, events: Sequence[ScoreEvent], reason: str, *, job: str | None = None
) -> list[AuditEntry]:
    """One audit entry per scoring. ``reasons`` carry the model version and the digests (the
    audit entry has no free-form field; these are codes, not personal data)."""
    now = time.time_ns()
    entries = []
    for event in events:
        reasons = [
            f"trigger:{reason}",
            f"model:{event.model_version}",
            f"model_digest:{event.model_digest}",
            f"inputs_digest:{event.inputs_digest}",
        ]
        if job is not None:
            reasons.append(f"job:{job}")
        entries.append(
            AuditEntry(
                time_ns=now,
                actor=SYSTEM_ACTOR,  # type: ignore[arg-type]
                action=SCORE_ACTION,
                subject=_entry_subject(vault, event),
                fields=SCORE_FIELDS,
                purpose=SCORE_PURPOSE,
                legal_basis={"type": "law", "ref": "Law 72.18 (RSU socio-economic index)"},
                outcome="allow",
                reasons=reasons,
            )
        )
    return entries


# Placeholders of prepared_score_entries' templates (what JSON writes as it is, and found in
# no other part of a score's entry).
_SUBJECT_SLOT = "@@subject@@"
_DIGEST_SLOT = "@@inputs_digest@@"


def prepared_score_entries(
    vault: Vault, events: Sequence[ScoreEvent], reason: str, *, job: str | None = None
) -> list[StoredEntry]:
    """:func:`score_entries`, each serialised and hashed (:func:`audit.prepare_entry`), by
    one :class:`audit.EntryTemplate` a model: a national rescoring prepares millions, which
    differ only in their subject and inputs digest."""
    templates: dict[tuple[str, str], EntryTemplate] = {}
    out: list[StoredEntry] = []
    for event in events:
        model = (event.model_version, event.model_digest)
        template = templates.get(model)
        if template is None:
            sample = event._replace(inputs_digest=_DIGEST_SLOT, head_tag=_SUBJECT_SLOT)
            (entry,) = score_entries(vault, [sample], reason, job=job)
            template = templates[model] = EntryTemplate(entry, (_SUBJECT_SLOT, _DIGEST_SLOT))
        out.append(template.prepare((_entry_subject(vault, event), event.inputs_digest)))
    return out


def _entry_subject(vault: Vault, event: ScoreEvent) -> str:
    """The subject of a scoring's audit entry: the head's tag (the convention of the access
    log: subject_tag(IDCS)), else the household record's own."""
    return event.head_tag or vault.subject_tag(event.subject)


def build_household_register(
    settings: Settings, engine: Engine, vault: Vault, register: Register, audit: AuditLog
) -> HouseholdRegister:
    """The RSU register, auditing every scoring it does (fail closed: if the audit log cannot
    record the scorings, the call raises :class:`audit.AuditUnavailable`)."""

    from rsu import HouseholdRegister

    def on_scored(events: Sequence[ScoreEvent], reason: str) -> None:
        if events:
            audit.append_many(score_entries(vault, events, reason))

    return HouseholdRegister(
        engine, vault, register, models=load_models(settings), on_scored=on_scored
    )


def eligible(
    vault: Vault, household_subject: str, predicate: dict[str, Any], decision: Decision
) -> bool:
    """The eligibility answer for the lead's agency route: ``predicate`` is
    :attr:`policies.PolicyResult.predicate` (program, threshold as decimal text, comparison)."""
    return vault.eligible(
        household_subject,
        Decimal(str(predicate["threshold"])),
        decision,
        comparison=str(predicate.get("comparison", "lte")),
    )


def score_view(explanation: Explanation) -> dict[str, Any]:
    """``GET /v1/me/score`` body: the citizen's own score and how it was computed."""
    return {
        "score": explanation.score,
        "model": {
            "version": explanation.model_version,
            "digest": explanation.model_digest,
            "illustrative": explanation.illustrative,
        },
        "language": explanation.language,
        "intercept": explanation.intercept,
        "territorial": {
            "label": explanation.territorial.label,
            "region": explanation.territorial.value,
            "contribution": explanation.territorial.contribution,
        },
        "contributions": [
            {
                "variable": c.variable,
                "label": c.label,
                "value": c.value,
                "contribution": c.contribution,
            }
            for c in sorted(
                explanation.contributions, key=lambda c: abs(Decimal(c.contribution)), reverse=True
            )
        ],
    }


def own_score(services: Any, enforcer: Any, idcs: str, language: str = "fr") -> dict[str, Any]:
    """The body of ``GET /v1/me/score`` for the citizen ``idcs`` (enforcer of the action
    ``read_score``): one policy decision and audit entry, then the vault's explanation of the
    household's score in ``language`` (ar, fr or en). Raises :class:`gateway.problems.Problem`
    (404 when the citizen is in no household, 403 on a denial, 409 when not scored yet)."""
    from gateway.problems import Problem
    from vault import NotScored

    household = services.households.household_of(idcs)
    if household is None:
        raise Problem(404, "no-household", "You are not a member of a household in the RSU.")
    outcome = enforcer.decide(
        # The owner rule (policies/people.rego): a citizen reads their own household's score.
        resource={"kind": "household", "owner": idcs, "fields": []},
        purpose=None,
        vault_subjects=[household],
        subject_tag=services.vault.subject_tag(idcs),
    )
    outcome.require_allowed()
    try:
        explanation = services.vault.explain(
            household,
            outcome.decisions[household],
            language=language,
            models=services.households.models,
        )
    except NotScored:
        raise Problem(409, "not-scored", "Your household has not been scored yet.") from None
    return {**score_view(explanation), "decision_id": outcome.decision_id}
