"""The audit entries of RSU scoring: one per household scored (model version, model digest,
keyed digest of the inputs; never the score or a declared value).

The vault scores but may not import the audit log; this is where its :class:`vault.ScoreEvent`
become audit entries, for the register's own scorings and a national rescoring alike.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from audit import AuditEntry, EntryTemplate
from audit.entry import Actor
from audit.storage import StoredEntry
from vault import ScoreEvent, Vault

__all__ = ["SCORE_ACTION", "SCORE_PURPOSE", "prepared_score_entries"]

SCORE_ACTION = "rsu_score"
SCORE_PURPOSE = "rsu_scoring"
SCORE_FIELDS = ["score", "score_model", "score_model_digest"]
SCORE_LEGAL_BASIS = {"type": "law", "ref": "Law 72.18 (RSU socio-economic index)"}
SYSTEM_ACTOR: Actor = {"kind": "system", "id": "rsu-scoring", "sector": None}

# Placeholders of the templates (what JSON writes as it is, and found in no other part of a
# score's entry).
_SUBJECT_SLOT = "@@subject@@"
_DIGEST_SLOT = "@@inputs_digest@@"


def prepared_score_entries(
    vault: Vault, events: Sequence[ScoreEvent], reason: str, *, job: str | None = None
) -> list[StoredEntry]:
    """One audit entry per scoring, serialised and hashed (:func:`audit.prepare_entry`) by one
    :class:`audit.EntryTemplate` a model: a national rescoring prepares millions, which differ
    only in their subject and inputs digest. ``reasons`` carry the trigger, the model version
    and the digests (the audit entry has no free-form field; these are codes, not personal
    data)."""
    now = time.time_ns()
    templates: dict[tuple[str, str], EntryTemplate] = {}
    out: list[StoredEntry] = []
    for event in events:
        model = (event.model_version, event.model_digest)
        template = templates.get(model)
        if template is None:
            entry = _entry(now, event.model_version, event.model_digest, reason, job)
            template = templates[model] = EntryTemplate(entry, (_SUBJECT_SLOT, _DIGEST_SLOT))
        out.append(template.prepare((_entry_subject(vault, event), event.inputs_digest)))
    return out


def _entry(
    now_ns: int, model_version: str, model_digest: str, reason: str, job: str | None
) -> AuditEntry:
    reasons = [
        f"trigger:{reason}",
        f"model:{model_version}",
        f"model_digest:{model_digest}",
        f"inputs_digest:{_DIGEST_SLOT}",
    ]
    if job is not None:
        reasons.append(f"job:{job}")
    return AuditEntry(
        time_ns=now_ns,
        actor=SYSTEM_ACTOR,
        action=SCORE_ACTION,
        subject=_SUBJECT_SLOT,
        fields=SCORE_FIELDS,
        purpose=SCORE_PURPOSE,
        legal_basis=SCORE_LEGAL_BASIS,
        outcome="allow",
        reasons=reasons,
    )


def _entry_subject(vault: Vault, event: ScoreEvent) -> str:
    """The subject of a scoring's audit entry: the head's tag (the convention of the access
    log: subject_tag(IDCS)), else the household record's own."""
    return event.head_tag or vault.subject_tag(event.subject)
