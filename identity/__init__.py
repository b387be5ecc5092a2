"""identity: who a person is, and who a client is. Three rooms share this package.

**The population register (RNP, Law 72.18)** — ``idcs``, ``person``, ``register``,
``pseudonyms``, ``synth``, ``geography``: issues the 10-digit IDCS (CSPRNG + Verhoeff, MOSIP
filters), enrols each resident once (deduplication on the vault's keyed blind indexes),
rectifies and changes status, and gives each sector its own unlinkable pseudonym.

**The social register (RSU, Law 72.18)** — ``rsu``, ``rsu_synth``: registers households of
RNP persons (one household per person at a time), hands their declaration to the vault, where
it is scored (vault/scoring.py), and rescores them on membership changes. It never reads a
declaration back nor sees a score.

**The OAuth 2.0 / OIDC authorization server** — ``identity.oauth`` (clients, tokens, logins);
see that subpackage's docstring.

May import: ``vault`` (errors; the ``Vault`` itself is passed in, typed structurally).
Must never: hold personal data in clear (names, dates and numbers go to the vault; this room
keeps identifiers, references and blind indexes), put an IDCS in an error message, a log line
or an audit entry, hand an IDCS to an agency (agencies get sector pseudonyms), or import
``gateway``.
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
from identity.pseudonyms import SectorPseudonym, SectorPseudonyms, UnknownPseudonym
from identity.register import (
    DuplicatePerson,
    PersonErased,
    PersonStatus,
    Register,
    RegisterError,
    StaleVersion,
    UnknownPerson,
)
from identity.rsu import (
    AlreadyInHousehold,
    DeclarationIn,
    Household,
    HouseholdError,
    HouseholdRegister,
    MemberIn,
    UnknownHousehold,
    UnknownMember,
)
from identity.subjects import Subjects, resolve_subjects

# Public names, one per line so each room adds its own without touching the other's.
__all__ = [
    "AccessToken",
    "AlreadyInHousehold",
    "Authenticator",
    "Client",
    "ClientRegistry",
    "DeclarationIn",
    "DuplicatePerson",
    "Household",
    "HouseholdError",
    "HouseholdRegister",
    "Idcs",
    "InvalidIdcs",
    "MemberIn",
    "OAuthService",
    "PersonErased",
    "PersonIn",
    "PersonStatus",
    "Register",
    "RegisterError",
    "SectorPseudonym",
    "SectorPseudonyms",
    "SignedInUser",
    "StaleVersion",
    "Subjects",
    "UnknownHousehold",
    "UnknownMember",
    "UnknownPerson",
    "UnknownPseudonym",
    "build_oauth_service",
    "field_problems",
    "passes_filters",
    "resolve_subjects",
    "verhoeff_check_digit",
    "verhoeff_valid",
]
