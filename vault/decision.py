"""The policy layer's decision, and the vault's check of it before anything is revealed.

A :class:`Decision` is sealed by ``policies.DecisionIssuer`` with an Ed25519 private key the vault
never holds; the vault only verifies (DESIGN.md "Policy decisions"). The signed bytes are the
RFC 8785 (JSON Canonicalization Scheme) form of every field but the signature, so the issuer and
the verifier need share nothing but this function.

A batch's decisions are sealed a slice at a time (:func:`slice_payload`): one signature over the
SHA-256 digests of every decision of the slice, each decision carrying the slice's digests. The
vault checks the decision's digest is among them and the slice's signature once, which is what
lets a payment run's thousand items cost one Ed25519 operation a slice on each side instead of
one an item.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature

from storekit.jcs import canonical_json
from vault.errors import DecisionRefused

__all__ = [
    "MASKS",
    "Decision",
    "DecisionVerifier",
    "decision_digest",
    "signing_payload",
    "slice_payload",
]

# Masking rules a decision may oblige (law 09.08 art. 3: data adequate, relevant and not excessive
# for the purpose). A rule the vault does not know refuses the decision: fail closed.
MASKS = frozenset({"year", "last2", "initial", "redact"})

# Clocks of the policy layer and the vault may differ a little; a decision issued further in the
# future than this is refused (it would otherwise outlive its TTL).
CLOCK_SKEW_NS = 5_000_000_000


@dataclass(frozen=True)
class Decision:
    """What the policy layer released, for whom, why, and for how long.

    ``requested`` are the fields the request named; ``fields``, those released, must be among
    them: the vault refuses a decision that releases more than was asked, whatever produced it
    (Law 09.08 art. 3(1)(c): data not excessive for the purpose).

    ``signature`` signs :func:`signing_payload` of this decision alone when ``slice_digests``
    is empty; otherwise ``slice_digests`` holds the :func:`decision_digest` of every decision
    sealed with this one (its own among them) and ``signature`` signs their
    :func:`slice_payload`.
    """

    decision_id: str
    subject: str
    action: str
    purpose: str
    fields: tuple[str, ...]
    requested: tuple[str, ...]
    obligations: Mapping[str, str]
    legal_basis: Mapping[str, str]
    policy_revision: str
    audit_index: int
    issued_at_ns: int
    expires_at_ns: int
    signature: bytes = b""
    slice_digests: tuple[bytes, ...] = ()


# I-JSON (RFC 7493 §2.2), which RFC 8785 builds on, allows only integers exactly representable
# as IEEE 754 doubles; nanosecond times exceed 2^53, so such integers are signed as decimal
# strings, as RFC 7493 recommends.
_SAFE_INT = 2**53 - 1


def _plain(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _SAFE_INT:
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _int(value: int) -> int | str:
    return str(value) if abs(value) > _SAFE_INT else value


def _document(d: Decision) -> tuple[dict[str, Any], bool | None]:
    """The signed document: every field but bytes ones, tuples as arrays, mappings as objects
    with string keys, integers beyond 2^53 - 1 as decimal strings; and True where it is known
    to be plain already (``storekit.jcs.is_plain``: the declared types, ASCII keys), else None
    for ``canonical_json`` to find out."""
    ob, lb = d.obligations, d.legal_basis
    texts = (d.decision_id, d.subject, d.action, d.purpose, d.policy_revision)
    if (
        isinstance(d, Decision)
        and all(type(x) is str for x in (*texts, *d.fields, *d.requested))
        and all(type(x) is str for x in (*ob, *ob.values(), *lb, *lb.values()))
        and all(type(i) is int for i in (d.audit_index, d.issued_at_ns, d.expires_at_ns))
    ):
        # The declared types, built directly: what the general walk below gives for them.
        ascii_keys = all(k.isascii() for k in (*ob, *lb))
        return {
            "action": d.action,
            "audit_index": _int(d.audit_index),
            "decision_id": d.decision_id,
            "expires_at_ns": _int(d.expires_at_ns),
            "fields": list(d.fields),
            "issued_at_ns": _int(d.issued_at_ns),
            "legal_basis": dict(lb),
            "obligations": dict(ob),
            "policy_revision": d.policy_revision,
            "purpose": d.purpose,
            "requested": list(d.requested),
            "subject": d.subject,
        }, (True if ascii_keys else None)
    return {
        f.name: _plain(getattr(d, f.name))
        for f in fields(d)
        if f.name not in _SEAL_FIELDS and not isinstance(getattr(d, f.name), bytes | bytearray)
    }, None


# What seals a decision rather than what it says: never part of the signed document.
_SEAL_FIELDS = frozenset({"signature", "slice_digests"})

# Domain separation: a slice's signed bytes start with this, a single decision's with "{", so
# neither signature can be passed off as the other.
_SLICE_PREFIX = b"sijill.decision-slice.v1\n"


def signing_payload(decision: Decision) -> bytes:
    """RFC 8785 canonical JSON (``storekit.jcs``) of every field but bytes ones (the signature);
    integers beyond 2^53 - 1 (the ``*_ns`` times) appear as decimal strings."""
    document, plain = _document(decision)
    return canonical_json(document, plain=plain)


def decision_digest(decision: Decision) -> bytes:
    """SHA-256 of the decision's :func:`signing_payload`: what a slice's signature covers of it."""
    return hashlib.sha256(signing_payload(decision)).digest()


def slice_payload(digests: Sequence[bytes]) -> bytes:
    """The bytes a slice's signature covers: a fixed prefix, then the 32-byte digests of its
    decisions in the order sealed."""
    if not digests or any(len(d) != 32 for d in digests):
        raise ValueError("a slice is one or more 32-byte digests")
    return _SLICE_PREFIX + b"".join(digests)


class PublicKey(Protocol):
    """The issuer's Ed25519 public key (cryptography's ``Ed25519PublicKey``): raises on a
    signature it did not make."""

    def verify(self, signature: bytes, data: bytes) -> None: ...


# Slices a verifier remembers as verified: a few batches' worth in flight at once.
_SLICES_REMEMBERED = 64


class DecisionVerifier:
    """Checks a decision before the vault acts on it; holds only the issuer's public key."""

    def __init__(self, public_key: PublicKey) -> None:
        self._public_key = public_key
        # Slices whose signature was found valid: (signature, payload) pairs. Ed25519
        # verification is a pure function of the key, signature and bytes, so remembering a
        # success changes no answer; it spares the other items of a slice the same check.
        self._slices: dict[tuple[bytes, bytes], None] = {}

    def _check_signature(self, decision: Decision) -> None:
        if not decision.slice_digests:
            self._public_key.verify(decision.signature, signing_payload(decision))
            return
        if decision_digest(decision) not in decision.slice_digests:
            raise InvalidSignature
        key = (decision.signature, slice_payload(decision.slice_digests))
        if key not in self._slices:
            self._public_key.verify(*key)
            if len(self._slices) >= _SLICES_REMEMBERED:
                self._slices.clear()
            self._slices[key] = None

    def verify(self, decision: Decision, subject: str, *, now_ns: int | None = None) -> None:
        """Raise :class:`DecisionRefused` unless the decision is genuine, current and about
        ``subject``. Each reason is a fixed phrase; none echoes the decision's content."""
        if not isinstance(decision, Decision):
            raise DecisionRefused("not a decision")
        try:
            self._check_signature(decision)
        except (InvalidSignature, ValueError, TypeError):
            # A forged or altered decision: any field changed after sealing lands here.
            raise DecisionRefused("decision signature is not valid") from None
        now = time.time_ns() if now_ns is None else now_ns
        if now >= decision.expires_at_ns:
            raise DecisionRefused("decision has expired")
        if decision.issued_at_ns > now + CLOCK_SKEW_NS:
            raise DecisionRefused("decision is issued in the future")
        if decision.audit_index < 0:
            # Fail closed: every decision names the audit entry appended before it was sealed.
            raise DecisionRefused("decision names no audit entry")
        if decision.subject != subject:
            # A decision obtained for one person cannot open another person's record.
            raise DecisionRefused("decision is about another subject")
        if not set(decision.fields) <= set(decision.requested):
            # An engine (or a bug) releasing fields nobody asked for opens nothing more.
            raise DecisionRefused("decision releases fields that were not requested")
        unknown = [rule for rule in decision.obligations.values() if rule not in MASKS]
        if unknown:
            raise DecisionRefused("decision carries an obligation the vault cannot apply")
