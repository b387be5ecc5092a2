"""The civil servant behind each agency call: token exchange (RFC 8693) turns an official's ID
token from the agency's own identity provider into a Sijill token naming the official (``act``)
and the case; a purpose may require it; the audit record, the citizen's access log and the
auditor's listing show the official's pseudonymous id and the case."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from identity.oauth import make_proof
from tests.gateway.conftest import AGENCY_SCOPES, World

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
ANSS_IDP = "https://idp.anss.example"
CNSS_IDP = "https://sso.cnss.example"
CASE = "ASD-R-2026-0042"


@dataclass
class Provider:
    """A test identity provider: its issuer and its signing key pair."""

    issuer: str
    key: ec.EllipticCurvePrivateKey
    kid: str

    def jwks(self) -> dict[str, Any]:
        public = ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [{**public, "kid": self.kid}]}

    def id_token(self, sub: str, audience: str, *, age_s: int = 0, ttl_s: int = 300) -> str:
        now = int(time.time()) - age_s
        claims = {"iss": self.issuer, "sub": sub, "aud": audience, "iat": now, "exp": now + ttl_s}
        return jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": self.kid})


def _provider(issuer: str) -> Provider:
    return Provider(issuer, ec.generate_private_key(ec.SECP256R1()), secrets.token_hex(4))


@dataclass
class Agency:
    """An agency client that must use DPoP, with its DPoP key."""

    client_id: str
    dpop_key: ec.EllipticCurvePrivateKey

    @property
    def dpop_jwk(self) -> dict[str, Any]:
        return ECAlgorithm.to_jwk(self.dpop_key.public_key(), as_dict=True)


@pytest.fixture
def anss(world: World) -> Agency:
    """ANSS: an agency registered for the purpose that requires an official, DPoP-bound, whose
    identity provider is trusted (as `sijill clients trust-idp` registers it)."""
    client = world.register(
        "anss", "agency", "social", AGENCY_SCOPES, "asd_payment asd_case_review"
    )
    from sqlalchemy import update

    from identity.oauth.tables import clients

    with world.oauth.registry._engine.begin() as conn:
        conn.execute(
            update(clients)
            .where(clients.c.client_id == client.client_id)
            .values(dpop_bound_access_tokens=True)
        )
    return Agency(client.client_id, ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture
def idp(world: World, anss: Agency) -> Provider:
    provider = _provider(ANSS_IDP)
    world.oauth.trust_issuer(anss.client_id, provider.issuer, provider.jwks())
    return provider


def _token_endpoint(world: World, agency: Agency, form: dict[str, str]) -> Any:
    proof = make_proof(
        agency.dpop_key, agency.dpop_jwk, method="POST", url=f"{world.issuer}/oauth/token"
    )
    data = {
        "client_assertion": world.assertion(agency.client_id),
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        **form,
    }
    return world.api.post("/oauth/token", data=data, headers={"DPoP": proof})


def exchange(world: World, agency: Agency, subject_token: str, case: str | None = CASE) -> Any:
    form = {"grant_type": EXCHANGE, "subject_token": subject_token, "subject_token_type": ID_TOKEN}
    if case is not None:
        form["case_reference"] = case
    return _token_endpoint(world, agency, form)


def _call(world: World, agency: Agency, token: str, path: str, body: dict[str, Any]) -> Any:
    proof = make_proof(
        agency.dpop_key,
        agency.dpop_jwk,
        method="POST",
        url=f"{world.issuer}{path}",
        access_token=token,
    )
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
    return world.api.post(path, json=body, headers=headers)


def _claims(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def _official_token(world: World, anss: Agency, idp: Provider, sub: str) -> str:
    response = exchange(world, anss, idp.id_token(sub, world.issuer))
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def test_an_officials_id_token_becomes_a_token_naming_the_official_and_the_case(
    world: World, anss: Agency, idp: Provider
) -> None:
    response = exchange(world, anss, idp.id_token("agent-1187", world.issuer))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert body["token_type"] == "DPoP"  # the client's registration requires it
    claims = _claims(body["access_token"])
    assert claims["sub"] == "anss"
    assert claims["case"] == CASE
    official = claims["act"]["sub"]
    assert official.startswith("off_")
    # The provider's own subject (an employee number, a login) is not what Sijill shows.
    assert "agent-1187" not in body["access_token"]
    # Introspection (RFC 7662) says who acts, as the token does (RFC 8693 §4.1).
    introspected = world.api.post(
        "/oauth/introspect",
        data={
            "token": body["access_token"],
            "client_assertion": world.assertion(anss.client_id),
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        },
    ).json()
    assert introspected["act"] == {"sub": official}
    assert introspected["case"] == CASE
    # One official, one id across exchanges; another official, another id.
    assert _claims(_official_token(world, anss, idp, "agent-1187"))["act"]["sub"] == official
    assert _claims(_official_token(world, anss, idp, "agent-2204"))["act"]["sub"] != official


def test_the_metadata_lists_the_token_exchange_grant(world: World) -> None:
    metadata = world.api.get("/.well-known/oauth-authorization-server").json()
    assert EXCHANGE in metadata["grant_types_supported"]


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(
            lambda w, idp: _provider(ANSS_IDP).id_token("agent-1187", w.issuer), id="forged"
        ),
        pytest.param(
            lambda w, idp: idp.id_token("agent-1187", w.issuer, age_s=400, ttl_s=300),
            id="expired",
        ),
        pytest.param(lambda w, idp: idp.id_token("agent-1187", "https://other.example"), id="aud"),
        pytest.param(
            lambda w, idp: idp.id_token("agent-1187", w.issuer, ttl_s=86400), id="long-lived"
        ),
        pytest.param(lambda w, idp: "not-a-jwt", id="garbage"),
    ],
)
def test_a_bad_id_token_is_refused_as_an_invalid_grant(
    world: World, anss: Agency, idp: Provider, make: Any
) -> None:
    response = exchange(world, anss, make(world, idp))
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"


def test_an_id_token_of_another_agencys_provider_is_refused(
    world: World, anss: Agency, idp: Provider
) -> None:
    cnss_idp = _provider(CNSS_IDP)
    world.oauth.trust_issuer("cnss", cnss_idp.issuer, cnss_idp.jwks())
    response = exchange(world, anss, cnss_idp.id_token("agent-1187", world.issuer))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert "not trusted by this client" in response.json()["error_description"]


@pytest.mark.parametrize("case", [None, "", "case with spaces", "ASD-2718281828", "x" * 65])
def test_a_missing_or_personal_looking_case_reference_is_refused(
    world: World, anss: Agency, idp: Provider, case: str | None
) -> None:
    response = exchange(world, anss, idp.id_token("agent-1187", world.issuer), case=case)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"


def test_a_purpose_requiring_an_official_refuses_a_call_without_one(
    world: World, anss: Agency, idp: Provider
) -> None:
    plain = _token_endpoint(world, anss, {"grant_type": "client_credentials"})
    assert plain.status_code == 200, plain.text
    bare = plain.json()["access_token"]
    # For a purpose that does not require one, the client needs no official.
    found = _call(
        world, anss, bare, "/v1/agency/lookup", {"cnie": "AB123456", "purpose": "asd_payment"}
    )
    assert found.status_code == 200, found.text
    path = f"/v1/agency/persons/{found.json()['pseudonym']}/query"
    ask = {"fields": ["phone"], "purpose": "asd_case_review"}
    refused = _call(world, anss, bare, path, ask)
    assert refused.status_code == 403, refused.text
    assert refused.json()["reasons"] == ["official_required"]
    token = _official_token(world, anss, idp, "agent-1187")
    allowed = _call(world, anss, token, path, ask)
    assert allowed.status_code == 200, allowed.text
    assert "phone" in allowed.json()["released"]


def test_the_record_the_citizen_and_the_auditor_see_the_official_and_the_case(
    world: World, anss: Agency, idp: Provider
) -> None:
    token = _official_token(world, anss, idp, "agent-1187")
    official = _claims(token)["act"]["sub"]
    found = _call(
        world, anss, token, "/v1/agency/lookup", {"cnie": "AB123456", "purpose": "asd_case_review"}
    )
    pseudonym = found.json()["pseudonym"]
    read = _call(
        world,
        anss,
        token,
        f"/v1/agency/persons/{pseudonym}/query",
        {"fields": ["phone", "household_size"], "purpose": "asd_case_review"},
    )
    assert read.status_code == 200, read.text
    # Another official of the same agency looks at another person.
    colleague = _official_token(world, anss, idp, "agent-2204")
    _call(
        world,
        anss,
        colleague,
        "/v1/agency/lookup",
        {"cnie": "CD654321", "purpose": "asd_case_review"},
    )

    citizen = {"Authorization": f"Bearer {world.citizen_token('fatima')}"}
    log = world.api.get("/v1/me/access-log", headers=citizen).json()["entries"]
    acted = [e for e in log if e["purpose"] == "asd_case_review"]
    assert {e["action"] for e in acted} == {"lookup", "read_attributes"}
    assert all(e["agency"] == "anss" and e["official"] == official for e in acted)
    assert all(e["case"] == CASE for e in acted)

    listed = world.call("cndp", "GET", "/v1/audit/entries", params={"official": official})
    assert listed.status_code == 200, listed.text
    entries = listed.json()["entries"]
    assert [(e["action"], e["actor"]["official"], e["actor"]["case"]) for e in entries] == [
        ("lookup", official, CASE),
        ("read_attributes", official, CASE),
    ]
    assert all(e["actor"]["id"] == "anss" for e in entries)
    # The colleague's call is theirs, not listed under this official.
    assert len({e["subject"] for e in entries}) == 1


def test_only_an_agency_exchanges_and_only_for_its_own_scopes(
    world: World, anss: Agency, idp: Provider
) -> None:
    id_token = idp.id_token("agent-1187", world.issuer)
    form = {"grant_type": EXCHANGE, "subject_token": id_token, "subject_token_type": ID_TOKEN,
            "case_reference": CASE}  # fmt: skip
    office = world.api.post(
        "/oauth/token",
        data={
            **form,
            "client_assertion": world.assertion("office-fes"),
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        },
    )
    assert office.status_code == 400, office.text
    assert office.json()["error"] == "unauthorized_client"
    beyond = _token_endpoint(world, anss, {**form, "scope": "agency:lookup audit:read"})
    assert beyond.status_code == 400, beyond.text
    assert beyond.json()["error"] == "invalid_scope"
    narrow = _token_endpoint(world, anss, {**form, "scope": "agency:lookup"})
    assert narrow.status_code == 200, narrow.text
    assert _claims(narrow.json()["access_token"])["scope"] == "agency:lookup"
