"""Consents, objections and their receipts (Law 09.08 art. 4 and 9).

Owns the consent artefacts (immutable: a change is a new artefact pointing to the one it
replaces, as DEPA's consent artefacts do), the citizen's objections and review requests (the
office's review desk: status, deadline, outcome), the signed receipts and the outbox of status
notifications to agencies. It reads the processing registry from
``policies`` and imports no other Sijill room. It never holds personal data beyond the
subject's IDCS and the names of fields; it never decides access (the policies do).
"""

from consent.errors import ConsentError, ConsentNotFound, InvalidConsent
from consent.models import Consent, ConsentStatus, Objection, Review, ReviewStatus
from consent.outbox import Delivery, Outbox
from consent.receipts import iso27560_record, kantara_receipt
from consent.service import ConsentService

__all__ = [
    "Consent",
    "ConsentError",
    "ConsentNotFound",
    "ConsentService",
    "ConsentStatus",
    "Delivery",
    "InvalidConsent",
    "Objection",
    "Outbox",
    "Review",
    "ReviewStatus",
    "iso27560_record",
    "kantara_receipt",
]
