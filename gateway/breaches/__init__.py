"""The breach register and its workflow: register → assess → notify the CNDP → notify the
persons affected → close (Law 09.08 art. 23; GDPR art. 33 and 34, as the CNDP recommends).

Owns the breach tables (the register, each step's record, the persons notified), the 72-hour
deadline to the CNDP and what counts as overdue, the signed CNDP notification (RFC 8785 JSON
in a JWS) and its verification, and the notices to persons, written to the consent room's
notification outbox in the same transaction as the step.

May import: the standard library, SQLAlchemy, rfc8785, prometheus_client, ``consent`` (the
outbox table and the controller's contact), ``identity.oauth.jose`` (the one JOSE library)
and ``gateway.timefmt``; never ``gateway.services`` or a route (they import this room).
It never decides access (the route asks the policy, and hands each step the audit entry that
recorded the decision), never holds an IDCS (persons are their vault's keyed tags) and never
writes a person's name or identifier into a notice, a step or a metric.
"""

from gateway.breaches.models import (
    ASSESSMENTS,
    CNDP_DEADLINE_NS,
    STATUSES,
    Assessment,
    Breach,
    BreachError,
    BreachNotFound,
    BreachReport,
    BreachStateError,
    InvalidBreach,
    Notices,
    Step,
    StepRecord,
)
from gateway.breaches.notification import (
    FORMAT,
    InvalidNotification,
    document_of,
    notification_document,
    verify_notification,
)
from gateway.breaches.service import BreachMetrics, BreachRegister

__all__ = [
    "ASSESSMENTS",
    "CNDP_DEADLINE_NS",
    "FORMAT",
    "STATUSES",
    "Assessment",
    "Breach",
    "BreachError",
    "BreachMetrics",
    "BreachNotFound",
    "BreachRegister",
    "BreachReport",
    "BreachStateError",
    "InvalidBreach",
    "InvalidNotification",
    "Notices",
    "Step",
    "StepRecord",
    "document_of",
    "notification_document",
    "verify_notification",
]
