"""Who is calling: the resource-server side of OAuth, as a FastAPI dependency.

A route that touches no personal data declares ``Depends(require_principal(...))``; the others
get their principal through the enforcement point (gateway/authz.py ``authorize``, ``admit``),
which runs :func:`checked_principal` in the worker thread it chooses.
The token is checked by :class:`identity.oauth.AccessTokenVerifier` (signature with our JWKS,
``ES256`` only, ``typ`` at+jwt, iss, aud, exp, nbf, revocation), the client must still be
registered and enabled, a DPoP-bound token (``cnf.jkt``) needs a matching proof (RFC 9449 §7),
a certificate-bound token (``cnf.x5t#S256``) the very client certificate it was issued for
(RFC 8705 §3), forwarded by a proxy the settings trust, and the route's kinds and scopes must
be met. Failures are problem+json with the
``WWW-Authenticate`` challenge of RFC 6750 §3 / RFC 9449 §7.1.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal, cast

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from audit.entry import ACTOR_KINDS, Actor, ActorKind
from gateway.middleware import route_template
from gateway.problems import Problem
from gateway.security import SecurityKind, claimed_client
from gateway.services import Services, services_of
from gateway.settings import IPNetwork
from identity import UnknownPerson
from identity.oauth import (
    DPOP_ALGS,
    AccessToken,
    CertificateError,
    DpopError,
    InvalidToken,
    OAuthService,
    certificate_thumbprint,
    parse_forwarded_certificate,
)

# "system": the gateway's own processes (the notifier), never a token's caller.
PrincipalKind = Literal["agency", "office", "citizen", "auditor", "system", "law_enforcement"]
REALM = "sijill"
# Puts a refusal on the record (gateway/security.py): kind, reason code, the client the
# credential names (None when it names none).
Report = Callable[[SecurityKind, str, str | None], None]


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a route.

    ``subject`` is the citizen's IDCS for a citizen, the client_id otherwise; ``actor`` names
    the officer or auditor who signed in through a console (None for machine clients and
    citizens); ``token_id`` is the access token's ``jti`` (for the audit log).
    """

    kind: PrincipalKind
    client_id: str
    sector: str
    scopes: frozenset[str]
    purposes: frozenset[str]
    subject: str
    token_id: str
    actor: str | None = None
    # The official acting through an agency client and their case (RFC 8693 ``act``, from
    # the token-exchange grant): pseudonymous id and file number, never a name.
    official: str | None = None
    case: str | None = None


def _challenge(
    scheme: str, error: str | None = None, description: str | None = None, scope: str | None = None
) -> str:
    params = [f'realm="{REALM}"']
    if scheme == "DPoP":
        params.append(f'algs="{" ".join(DPOP_ALGS)}"')
    if error:
        params.append(f'error="{error}"')
    if description:
        params.append(f'error_description="{description}"')
    if scope:
        params.append(f'scope="{scope}"')
    return f"{scheme} " + ", ".join(params)


def _unauthorized(detail: str, scheme: str = "Bearer", error: str = "invalid_token") -> Problem:
    kind = "invalid-dpop-proof" if error == "invalid_dpop_proof" else "invalid-token"
    return Problem(
        401,
        kind,
        detail,
        headers={"WWW-Authenticate": _challenge(scheme, error, detail.rstrip("."))},
    )


def _principal(oauth: OAuthService, token: AccessToken, report: Report) -> Principal:
    client = oauth.registry.get(token.client_id)
    if client is None or client.disabled:
        report("token_refused", "client_disabled", token.client_id)
        raise _unauthorized("The client this token was issued to is not enabled.")
    # A token of a client registered sender-constrained that is not bound (issued before the
    # client was so registered) is refused, not served: RFC 9449 §5.2, RFC 8705 §3.4.
    if client.tls_bound and token.x5t is None:
        report("certificate_refused", "bearer_not_allowed", token.client_id)
        raise _unauthorized(
            "This client's tokens are bound to its client certificate; "
            "ask for a new token presenting it."
        )
    if client.dpop_bound and token.jkt is None and token.x5t is None:
        report("dpop_refused", "bearer_not_allowed", token.client_id)
        raise _unauthorized(
            "This client must use DPoP-bound tokens (or certificate-bound ones); ask for a "
            "new token with a DPoP proof or its client certificate.",
            "DPoP",
            "invalid_token",
        )
    kind: PrincipalKind
    subject, actor = client.client_id, None
    if token.subject_kind == "citizen":
        kind, subject = "citizen", token.subject
    elif token.subject_kind in {"officer", "auditor"}:
        kind = "office" if token.subject_kind == "officer" else "auditor"
        actor = token.subject
    elif client.kind != "portal" and token.subject == client.client_id:
        kind = client.kind
    else:
        report("token_refused", "wrong_caller", token.client_id)
        raise _unauthorized("The token does not identify a caller this API serves.")
    return Principal(
        kind=kind,
        client_id=client.client_id,
        sector=client.sector,
        scopes=frozenset(token.scopes),
        purposes=frozenset(client.purposes),
        subject=subject,
        token_id=token.token_id,
        actor=actor,
        official=token.official if kind == "agency" else None,
        case=token.case if kind == "agency" else None,
    )


def _authenticate(credentials: Credentials) -> Principal:
    oauth, method, url = credentials.services.oauth, credentials.method, credentials.url
    dpop, report = credentials.dpop, credentials.report
    certificate = credentials.certificate()
    scheme, _, token = credentials.authorization.partition(" ")
    scheme = scheme.lower()
    token = token.strip()
    if scheme not in {"bearer", "dpop"} or not token:
        raise Problem(
            401,
            "unauthorized",
            "An access token is required.",
            headers={"WWW-Authenticate": f"{_challenge('Bearer')}, {_challenge('DPoP')}"},
        )
    shown = "DPoP" if scheme == "dpop" else "Bearer"
    try:
        checked = oauth.verifier.verify(token)
    except InvalidToken as exc:
        report("token_refused", exc.reason, claimed_client(token))
        raise _unauthorized(f"{str(exc).capitalize()}.", shown) from None
    if checked.jkt is not None:
        if scheme != "dpop":
            # RFC 9449 §7.2: a bound token presented as a bearer token is refused.
            report("dpop_refused", "bound_token_as_bearer", checked.client_id)
            raise _unauthorized("This token is DPoP-bound; present it with a DPoP proof.", "DPoP")
        if len(dpop) != 1:
            report("dpop_refused", "proof_count", checked.client_id)
            raise _unauthorized(
                "Exactly one DPoP proof header is required.", "DPoP", "invalid_dpop_proof"
            )
        try:
            oauth.dpop.verify(
                dpop[0], method=method, url=url, access_token=token, expected_jkt=checked.jkt
            )
        except DpopError as exc:
            report("dpop_refused", exc.reason, checked.client_id)
            raise _unauthorized(f"{str(exc).capitalize()}.", "DPoP", "invalid_dpop_proof") from None
    elif scheme == "dpop":
        report("dpop_refused", "unbound_token_as_dpop", checked.client_id)
        raise _unauthorized("This token is not DPoP-bound; present it as a Bearer token.")
    if checked.x5t is not None:
        # RFC 8705 §3: the certificate of this connection must be the one the token names.
        if certificate is None:
            report("certificate_refused", "certificate_missing", checked.client_id)
            raise _unauthorized(
                "This token is bound to a client certificate; present that certificate.", shown
            )
        if not hmac.compare_digest(certificate, checked.x5t):
            report("certificate_refused", "wrong_certificate", checked.client_id)
            raise _unauthorized(
                "The client certificate is not the one this token is bound to.", shown
            )
    return _principal(oauth, checked, report)


def _trusted_proxy(source: str | None, networks: tuple[IPNetwork, ...]) -> bool:
    try:
        address = ipaddress.ip_address(source or "")
    except ValueError:
        return False
    return any(address in network for network in networks)


def forwarded_certificate(request: Request, report: Report) -> str | None:
    """The SHA-256 thumbprint (``x5t#S256``) of the client certificate the TLS-terminating
    proxy checked and forwarded, None without one. The header is believed only from a proxy
    in ``SIJILL_CLIENT_CERT_PROXIES`` (the immediate peer: the server does not rewrite it
    from X-Forwarded-For): from anyone else it is a forgery attempt, ignored and recorded."""
    settings = services_of(request).settings
    if settings.client_cert_header is None:
        return None
    values = [v for v in request.headers.getlist(settings.client_cert_header) if v.strip()]
    if not values:
        return None  # an empty header: the client presented no certificate
    if not _trusted_proxy(source_of(request), settings.client_cert_proxy_networks):
        report("certificate_refused", "untrusted_source", None)
        return None
    if len(values) != 1:
        report("certificate_refused", "header_count", None)
        return None
    try:
        return certificate_thumbprint(parse_forwarded_certificate(values[0]))
    except CertificateError as exc:
        report("certificate_refused", exc.reason, None)
        return None


def client_actor(oauth: OAuthService, client_id: str | None) -> Actor | None:
    """The audit actor of a registered client a credential names, None for any other name
    (an attacker's invented client id is not put on the record as if it were one)."""
    if client_id is None:
        return None
    try:
        client = oauth.registry.get(client_id)
    except Exception:
        return None  # the registry is unreachable: the refusal is recorded without it
    if client is None:
        return None
    kind = cast(ActorKind, client.kind if client.kind in ACTOR_KINDS else "system")
    return {"kind": kind, "id": client.client_id, "sector": client.sector or None}


def source_of(request: Request) -> str | None:
    """The address the request came from, for a security event (truncated and tagged there)."""
    return request.client.host if request.client is not None else None


def refusal_reporter(request: Request) -> Report:
    """Records this request's refusals as security events (route template, source network).
    It reads the client registry: call it off the event loop."""
    services = services_of(request)

    def report(kind: SecurityKind, reason: str, client_id: str | None) -> None:
        services.security_events.record(
            kind,
            reason,
            actor=client_actor(services.oauth, client_id),
            route=route_template(request.scope),
            source=source_of(request),
        )

    return report


@dataclass(frozen=True)
class Credentials:
    """What a request presents to be authenticated, taken from it on the event loop without
    blocking, so that checking it can run in whichever worker thread the route's work runs
    (an agency request: one thread hop for both, gateway/admission.py :class:`Admission`)."""

    services: Services
    method: str
    url: str
    authorization: str
    dpop: list[str]
    report: Report
    # Read in the worker thread: a forged header is recorded, and recording writes.
    certificate: Callable[[], str | None]


def credentials_of(request: Request) -> Credentials:
    services = services_of(request)
    report = refusal_reporter(request)
    return Credentials(
        services=services,
        method=request.method,
        url=services.oauth.issuer_url + request.url.path,
        authorization=request.headers.get("authorization", ""),
        dpop=request.headers.getlist("dpop"),
        report=report,
        certificate=lambda: forwarded_certificate(request, report),
    )


async def authenticate(request: Request) -> Principal:
    """The caller of this request, or a 401 problem (the refusal on the record)."""
    return await run_in_threadpool(_authenticate, credentials_of(request))


def _serves_citizen(services: Services, idcs: str) -> None:
    """An erased person's sign-in token, minted before the erasure and not yet expired, no
    longer serves anything (Law 09.08 art. 8: nothing is processed about them any more)."""
    try:
        erased = services.register.status(idcs) == "erased"
    except UnknownPerson:
        return  # the routes answer for a person the register does not know
    if erased:
        raise Problem(
            401,
            "invalid-token",
            "The person this token was issued for is no longer in the register.",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )


def checked_principal(
    credentials: Credentials,
    allowed: frozenset[PrincipalKind] | None,
    needed: tuple[str, ...],
) -> Principal:
    """The :class:`Principal` the credentials prove, if it is one of ``allowed`` (any, if
    None) and holds every scope in ``needed``; 401 or 403 problem+json otherwise. Reads the
    token's revocation and the client registry: call it off the event loop."""
    principal = _authenticate(credentials)
    if principal.kind == "citizen":
        _serves_citizen(credentials.services, principal.subject)
    if allowed is not None and principal.kind not in allowed:
        raise Problem(403, "forbidden", "This route is not open to this kind of caller.")
    missing = [s for s in needed if s not in principal.scopes]
    if missing:
        scheme = "DPoP" if credentials.authorization.lower().startswith("dpop ") else "Bearer"
        raise Problem(
            403,
            "insufficient-scope",
            "The access token lacks a scope this route requires.",
            required_scopes=list(needed),
            headers={
                "WWW-Authenticate": _challenge(scheme, "insufficient_scope", None, " ".join(needed))
            },
        )
    return principal


def require_principal(
    kinds: Iterable[PrincipalKind] | None = None, scopes: Iterable[str] = ()
) -> Callable[..., object]:
    """A dependency yielding the :class:`Principal` if it is one of ``kinds`` (any, if None)
    and holds every scope in ``scopes``; 401 or 403 problem+json otherwise."""
    allowed = frozenset(kinds) if kinds is not None else None
    needed = tuple(scopes)

    async def dependency(request: Request) -> Principal:
        principal = await run_in_threadpool(
            checked_principal, credentials_of(request), allowed, needed
        )
        request.state.principal = principal
        return principal

    return dependency


__all__ = [
    "Credentials",
    "Principal",
    "PrincipalKind",
    "authenticate",
    "checked_principal",
    "client_actor",
    "credentials_of",
    "forwarded_certificate",
    "refusal_reporter",
    "require_principal",
    "source_of",
]


class OfficeUnknown(Exception):
    """The command line named no enabled registration office."""


# The token id a command-line step records: it has no access token; the office's registration
# (and, where a step needs one, the officer's own sign-in) stands for it.
COMMAND_LINE_STEP = "command-line"


def command_line_office(services: Services, office: str, actor: str | None) -> Principal:
    """The principal of an office's step taken at the command line (``sijill rsu household``,
    ``sijill rnp erasure``): the named office (a registered, enabled OAuth client of kind
    office) acts with its registered sector, scopes and purposes, as its token would carry
    them, and ``actor`` (the officer, if one) is named on the record; the policy then decides
    as it does over HTTP. :class:`OfficeUnknown` otherwise."""
    client = services.oauth.registry.get(office)
    if client is None or client.kind != "office" or client.disabled:
        raise OfficeUnknown(f"{office!r} is not an enabled registration office")
    return Principal(
        kind="office",
        client_id=client.client_id,
        sector=client.sector,
        scopes=frozenset(client.scopes),
        purposes=frozenset(client.purposes),
        subject=client.client_id,
        token_id=COMMAND_LINE_STEP,
        actor=actor,
    )
