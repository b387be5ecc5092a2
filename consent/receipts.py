"""Consent receipts: Kantara Consent Receipt v1.1 claims, signed as a JWS by the gateway,
and the same artefact as an ISO/IEC TS 27560 consent record.

The receipt's ``piiPrincipalId`` is the citizen's pseudonym in the recipient's sector, never
the IDCS: a receipt handed to an agency must not link sectors.
"""

from __future__ import annotations

from typing import Any

from consent.models import Consent
from policies.registry import RegistryEntry

KANTARA_VERSION = "KI-CR-v1.1.0"
JURISDICTION = "MA"
CONTROLLER = {
    "piiController": "Agence Nationale des Registres (ANR)",
    "contact": "Délégué à la protection des données",
    "address": {"streetAddress": "Rabat", "addressCountry": "MA"},
    "email": "dpo@anr.example.ma",
    "phone": "+212-5-00-00-00-00",
    "piiControllerUrl": "https://anr.example.ma",
}


def kantara_receipt(
    consent: Consent, entry: RegistryEntry, principal_id: str, policy_url: str
) -> dict[str, Any]:
    """Claims of a Kantara Consent Receipt v1.1 for one artefact (to be signed as a JWS)."""
    return {
        "version": KANTARA_VERSION,
        "jurisdiction": JURISDICTION,
        "consentTimestamp": consent.granted_at_ns // 1_000_000_000,
        "collectionMethod": consent.method,
        "consentReceiptID": consent.id,
        "language": "fr",
        "piiPrincipalId": principal_id,
        "piiControllers": [CONTROLLER],
        "policyUrl": policy_url,
        "services": [
            {
                "service": entry.description or entry.purpose,
                "purposes": [
                    {
                        "purpose": entry.purpose,
                        "purposeCategory": [entry.sector],
                        "consentType": "EXPLICIT",
                        "piiCategory": list(consent.fields),
                        "primaryPurpose": True,
                        "termination": f"expires {consent.expires_at_ns // 1_000_000_000} "
                        "(seconds since epoch) or on revocation",
                        "thirdPartyDisclosure": True,
                        "thirdPartyName": consent.recipient,
                    }
                ],
            }
        ],
        "sensitive": False,
        "spiCat": [],
        # Extensions: the artefact chain and the CNDP declaration it rests on.
        "status": consent.status.value,
        "replaces": consent.replaces,
        "expiresAt": consent.expires_at_ns // 1_000_000_000,
        "cndpDeclaration": entry.cndp_declaration,
    }


def iso27560_record(
    consent: Consent, entry: RegistryEntry, principal_id: str, history: list[Consent]
) -> dict[str, Any]:
    """The artefact as an ISO/IEC TS 27560 consent record (JSON serialisation)."""
    return {
        "schema_version": "ISO/IEC TS 27560:2023",
        "record_id": consent.id,
        "pii_principal_id": principal_id,
        "pii_controllers": [{"name": CONTROLLER["piiController"], "contact": CONTROLLER["email"]}],
        "notice": {"jurisdiction": JURISDICTION, "cndp_declaration": entry.cndp_declaration},
        "purposes": [
            {
                "purpose": entry.purpose,
                "lawful_basis": "consent",
                "legal_reference": entry.basis_ref,
                "pii_categories": list(consent.fields),
                "recipients": [consent.recipient],
                "retention": entry.retention,
            }
        ],
        "consent_type": "explicit",
        "collection_method": consent.method,
        "state": consent.status.value.lower(),
        "validity": {
            "from": consent.granted_at_ns // 1_000_000_000,
            "until": consent.expires_at_ns // 1_000_000_000,
        },
        "events": [
            {
                "record_id": c.id,
                "state": c.event.value.lower(),
                "time": c.granted_at_ns // 1_000_000_000,
                "replaces": c.replaces,
            }
            for c in history
        ],
    }
