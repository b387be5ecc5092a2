"""Sealing: the only place a :class:`vault.Decision` is created (DESIGN.md "Policy decisions").

The vault reveals nothing without a decision signed by the policy layer's Ed25519 key and bound
to the audit entry appended before it (``audit_index``). The private key lives here; the vault
holds only the public half.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from policies.engine import PolicyResult
from vault import Decision
from vault.decision import MASKS, decision_digest, signing_payload, slice_payload

__all__ = ["DecisionIssuer", "SealRefused"]


class SealRefused(Exception):
    """A result that must not become a decision (denied, or not a sealable shape)."""


class DecisionIssuer:
    """Turns an allowed :class:`PolicyResult` into a signed, short-lived ``vault.Decision``."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._key.public_key()

    def seal(
        self,
        result: PolicyResult,
        subject: str,
        action: str,
        purpose: str,
        audit_index: int,
        ttl_s: float = 30,
        *,
        requested: Sequence[str],
    ) -> Decision:
        """Sign ``result`` for ``subject`` alone (see :meth:`draft` for what is refused)."""
        draft = self.draft(
            result, subject, action, purpose, audit_index, ttl_s, requested=requested
        )
        return self.seal_many([draft])[0]

    def seal_many(self, drafts: Sequence[Decision]) -> list[Decision]:
        """Sign :meth:`draft` decisions together: one alone carries its own signature; two or
        more, one signature over the slice of their digests (``vault.decision``), which the
        vault checks once for all of them. Each stays bound to its own subject, fields, audit
        entry and expiry exactly as if sealed alone."""
        if len(drafts) <= 1:
            return [replace(d, signature=self._key.sign(signing_payload(d))) for d in drafts]
        digests = tuple(decision_digest(d) for d in drafts)
        signature = self._key.sign(slice_payload(digests))
        return [replace(d, signature=signature, slice_digests=digests) for d in drafts]

    def draft(
        self,
        result: PolicyResult,
        subject: str,
        action: str,
        purpose: str,
        audit_index: int,
        ttl_s: float = 30,
        *,
        requested: Sequence[str],
    ) -> Decision:
        """``result`` for ``subject`` as an unsigned decision, for :meth:`seal_many`.

        Only field masks travel as obligations: the vault refuses any rule it does not know
        (fail closed), and a predicate-only answer (eligibility) releases no field, so its
        program and threshold stay in :attr:`PolicyResult.predicate` for the caller.
        ``requested`` are the fields the request named: a result releasing any other is
        refused here, and the vault checks the same bound again on the sealed decision."""
        if not result.allow:
            raise SealRefused("a denied decision is never sealed")
        if audit_index < 0:
            raise SealRefused("a decision is sealed only after its audit entry is appended")
        if ttl_s <= 0:
            raise SealRefused("ttl_s must be positive")
        if not set(result.fields) <= set(requested):
            raise SealRefused("the result releases fields that were not requested")
        masks = {name: rule for name, rule in result.masks.items() if rule in MASKS}
        if len(masks) != len(result.masks):
            # A mask the vault cannot apply would otherwise be silently dropped there.
            raise SealRefused("the policy obliged a mask the vault does not know")
        issued = time.time_ns()
        return Decision(
            decision_id=result.decision_id,
            subject=subject,
            action=action,
            purpose=purpose,
            fields=tuple(sorted(result.fields)),
            requested=tuple(sorted(set(requested))),
            obligations=masks,
            legal_basis={str(k): str(v) for k, v in (result.legal_basis or {}).items()},
            policy_revision=result.policy_revision,
            audit_index=audit_index,
            issued_at_ns=issued,
            expires_at_ns=issued + int(ttl_s * 1_000_000_000),
        )
