"""The breach notification to the CNDP: one JSON document, canonical per RFC 8785, signed as
a compact JWS (RFC 7515) with the authorization server's current ES256 key.

The JWS payload is the canonical bytes themselves, so the signed artefact and the document
the CNDP files are one and the same; anyone holding the gateway's JWKS (``GET /oauth/jwks``)
verifies it (:func:`verify_notification`, ``sijill breaches verify``). The format is
documented in docs/privacy.md ("Breach handling").
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import rfc8785

from consent.receipts import CONTROLLER
from gateway.breaches.models import Breach, Step
from gateway.timefmt import rfc3339
from identity.oauth.jose import JoseError, import_jwk, is_low_s, unverified_header, verify_jws

FORMAT = "sijill-breach-notification/1"
JWS_TYP = "sijill-breach-notification+jws"


class InvalidNotification(Exception):
    """The export does not verify: wrong signature, unknown key, or not the documented form."""


def _time(ns: int | None) -> str | None:
    return rfc3339(ns) if ns is not None else None


def notification_document(
    breach: Breach,
    *,
    notification_id: str,
    issuer: str,
    notified_at_ns: int,
    step: Step,
    delay_reason: str | None,
) -> dict[str, Any]:
    """The notification's content (GDPR art. 33(3)): the nature of the breach, the categories
    and approximate numbers of persons and records, the contact point, the likely
    consequences, the measures; and art. 33(1)'s reasons when it comes after 72 hours."""
    return {
        "format": FORMAT,
        "notification_id": notification_id,
        "issuer": issuer,
        "controller": dict(CONTROLLER),
        "notified_at": rfc3339(notified_at_ns),
        "notified_by": step.actor,
        # The audit entry that recorded this notification: its inclusion proof against a
        # signed checkpoint shows the CNDP when the gateway sent it.
        "audit_entry": {"index": step.audit_index, "decision_id": step.decision_id},
        "breach": {
            "id": breach.id,
            "title": breach.title,
            "description": breach.description,
            "occurred_at": _time(breach.occurred_at_ns),
            "detected_at": rfc3339(breach.detected_at_ns),
            "registered_at": rfc3339(breach.registered_at_ns),
            "person_categories": list(breach.person_categories),
            "persons_affected_approx": breach.persons_affected,
            "record_categories": list(breach.record_categories),
            "records_affected_approx": breach.records_affected,
            "likely_consequences": breach.likely_consequences,
            "measures": breach.measures,
            "risk": breach.risk,
        },
        "deadline": rfc3339(breach.cndp_deadline_ns),
        "within_deadline": notified_at_ns <= breach.cndp_deadline_ns,
        "delay_reason": delay_reason,
    }


def canonical(document: Mapping[str, Any]) -> bytes:
    return rfc8785.dumps(dict(document))


def verify_notification(token: str, jwks: Mapping[str, Any]) -> dict[str, Any]:
    """The document of a notification whose signature a key of ``jwks`` verifies, whose
    payload is canonical JSON and whose format is :data:`FORMAT`; raises
    :class:`InvalidNotification` otherwise."""
    token = token.strip()
    try:
        header = unverified_header(token)
    except (JoseError, ValueError, UnicodeError) as exc:
        raise InvalidNotification(f"not a compact JWS ({type(exc).__name__})") from None
    if header.get("typ") != JWS_TYP or header.get("alg") != "ES256":
        raise InvalidNotification("not a Sijill breach notification (typ or alg)")
    keys = [k for k in jwks.get("keys", []) if k.get("kid") == header.get("kid")]
    if not keys:
        raise InvalidNotification("signed with a key the JWKS does not hold")
    if not is_low_s(token):
        raise InvalidNotification("signature not in its one issued form")
    try:
        _, payload = verify_jws(token, import_jwk(keys[0]), ["ES256"])
    except (JoseError, ValueError) as exc:
        raise InvalidNotification(f"signature does not verify ({type(exc).__name__})") from None
    try:
        document = json.loads(payload)
    except ValueError:
        raise InvalidNotification("payload is not JSON") from None
    if not isinstance(document, dict) or canonical(document) != payload:
        raise InvalidNotification("payload is not canonical JSON (RFC 8785)")
    if document.get("format") != FORMAT:
        raise InvalidNotification(f"format is not {FORMAT}")
    return document


def document_of(token: str) -> dict[str, Any]:
    """The document a notification this gateway signed carries (read back from the store;
    a notification received from elsewhere goes through :func:`verify_notification`)."""
    payload = token.split(".")[1]
    document: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return document
