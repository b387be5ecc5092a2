"""The register of court orders under which law-enforcement authorities query the registers
(docs/privacy.md, "Law-enforcement queries").

Owns the order table: the reference, the court and date, the office and officer who entered
it, the law-enforcement client it is for, the person it names (their keyed audit tag, and the
client's sector pseudonym for them, never the IDCS), the fields and purposes in scope, the
expiry and the embargo, and the revocation. Hands the policy the order as ``input.court_order``.

May import: the standard library, SQLAlchemy, ``identity.oauth`` (the client registry); never
``gateway.services`` or a route (they import this room). It never decides access: the route
asks the policy, and the register records the audit entry that allowed each change.
"""

from gateway.court_orders.register import (
    REFERENCE_PATTERN,
    CourtOrder,
    CourtOrderExists,
    CourtOrderNotFound,
    CourtOrderRegister,
    Revocation,
    UnderOrder,
)

__all__ = [
    "REFERENCE_PATTERN",
    "CourtOrder",
    "CourtOrderExists",
    "CourtOrderNotFound",
    "CourtOrderRegister",
    "Revocation",
    "UnderOrder",
]
