"""identity: who a person is, and who a client is. Two rooms share this package.

Owns: **the population register (RNP, Law 72.18)** — ``idcs``, ``person``, ``register``,
``pseudonyms``, ``bulk``, ``synth``, ``geography``, and their tables (``tables``): issues the
10-digit IDCS (CSPRNG + Verhoeff, MOSIP filters), enrols each resident once (deduplication on
the vault's keyed blind indexes), rectifies (on the office's initiative or on the person's
request, ``rectification``) and changes status, and gives each sector its own unlinkable
pseudonym. **The OAuth 2.0 / OIDC authorization server** — ``identity.oauth``
(clients, tokens, logins; its tables in ``identity.oauth.tables``); see that subpackage's
docstring.

May import: ``vault`` (errors; the ``Vault`` itself is passed in, typed structurally),
``storekit`` (SQL plumbing).

Must never: hold personal data in clear (names, dates and numbers go to the vault; this room
keeps identifiers, references and blind indexes), put an IDCS in an error message, a log line
or an audit entry, hand an IDCS to an agency (agencies get sector pseudonyms), or import
``gateway`` or ``rsu`` (the social register builds on this room, not the reverse).
"""

from identity.idcs import Idcs, InvalidIdcs, passes_filters, verhoeff_check_digit, verhoeff_valid
from identity.oauth import (
    AccessToken,
    Authenticator,
    Client,
    ClientRegistry,
    OAuthService,
    SignedInUser,
    build_oauth_service,
)
from identity.person import PersonIn, field_problems
from identity.pseudonyms import (
    MAX_TRANSLATE,
    HeldPseudonym,
    KeyVersion,
    SectorPseudonym,
    SectorPseudonyms,
    TransitionNotOver,
    UnknownPseudonym,
)
from identity.rectification import (
    RectificationRequest,
    RectificationRequests,
    RequestDecided,
    UnknownRequest,
)
from identity.register import (
    DuplicatePerson,
    PersonErased,
    PersonStatus,
    Register,
    RegisterError,
    StaleVersion,
    UnknownPerson,
)

# Public names, one per line so each room adds its own without touching the other's.
__all__ = [
    "MAX_TRANSLATE",
    "AccessToken",
    "Authenticator",
    "Client",
    "ClientRegistry",
    "DuplicatePerson",
    "HeldPseudonym",
    "Idcs",
    "InvalidIdcs",
    "KeyVersion",
    "OAuthService",
    "PersonErased",
    "PersonIn",
    "PersonStatus",
    "RectificationRequest",
    "RectificationRequests",
    "Register",
    "RegisterError",
    "RequestDecided",
    "SectorPseudonym",
    "SectorPseudonyms",
    "SignedInUser",
    "StaleVersion",
    "TransitionNotOver",
    "UnknownPerson",
    "UnknownPseudonym",
    "UnknownRequest",
    "build_oauth_service",
    "field_problems",
    "passes_filters",
    "verhoeff_check_digit",
    "verhoeff_valid",
]
