"""Checks of a vault store's contents that need no key: what an operator runs after an upgrade.

A household's score is one field, ``score``, holding "<index> <model version> <model SHA-256>"
in one ciphertext (vault.scoring). A record that also holds the fields ``score_model`` and
``score_model_digest`` keeps its score in a three-field form the vault does not read: the
vault migration ``vault_0005`` removes such scores, and :func:`check_store` tells whether any
are left (a store restored from an older backup, say). The field names are plaintext, so the
check decrypts nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, func, select

from vault import tables as t

__all__ = ["LEGACY_SCORE_FIELDS", "StoreCheck", "check_store"]

# The fields that mark a score in the three-field form (its model's version and digest).
LEGACY_SCORE_FIELDS = ("score_model", "score_model_digest")


@dataclass(frozen=True)
class StoreCheck:
    """What :func:`check_store` found: counts only, no subject id and no value."""

    legacy_scores: int  # households whose score is in the three-field form

    @property
    def clean(self) -> bool:
        return self.legacy_scores == 0


def check_store(engine: Engine) -> StoreCheck:
    """Count what the store holds in a form the vault does not read."""
    with engine.connect() as conn:
        legacy = conn.execute(
            select(func.count(func.distinct(t.fields.c.subject))).where(
                t.fields.c.field.in_(LEGACY_SCORE_FIELDS)
            )
        ).scalar_one()
    return StoreCheck(legacy_scores=int(legacy))
