"""A small world for end-to-end tests through HTTP: two enrolled persons, agencies of two
sectors, a registration office, an auditor client, and a way to get each one's token."""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from jwt.algorithms import ECAlgorithm

from identity import PersonIn
from identity.oauth import OAuthService
from rsu.synthetic import household_request

AGENCY_SCOPES = "agency:lookup agency:query agency:eligibility"

FATIMA = dict(
    given_name_ar="فاطمة",
    family_name_ar="بنعلي",
    given_name_lat="Fatima",
    family_name_lat="Benali",
    sex="F",
    birth_date="1987-03-14",
    birth_place="Fès",
    cnie="AB123456",
    address="12 Derb Sidi Ahmed, Fès",
    region="Fès-Meknès",
    province="Fès",
    phone="+212612345678",
)
YOUSSEF = dict(
    given_name_ar="يوسف",
    family_name_ar="العلوي",
    given_name_lat="Youssef",
    family_name_lat="Alaoui",
    sex="M",
    birth_date="1979-11-02",
    birth_place="Rabat",
    cnie="CD654321",
    address="4 Rue Oued Sebou, Rabat",
    region="Rabat-Salé-Kénitra",
    province="Rabat",
    phone="+212698765432",
)


@dataclass
class Client:
    client_id: str
    key: ec.EllipticCurvePrivateKey
    kid: str


@dataclass
class World:
    api: TestClient
    oauth: OAuthService
    services: Any
    issuer: str
    clients: dict[str, Client] = field(default_factory=dict)
    people: dict[str, str] = field(default_factory=dict)  # name -> IDCS

    def register(
        self, client_id: str, kind: str, sector: str, scopes: str, purposes: str = ""
    ) -> Client:
        key = ec.generate_private_key(ec.SECP256R1())
        kid = secrets.token_hex(4)
        public = {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid}
        self.oauth.registry.add(
            name=client_id,
            kind=kind,
            sector=sector,
            jwks={"keys": [public]},
            scopes=scopes,
            purposes=purposes,
            client_id=client_id,
        )
        self.clients[client_id] = Client(client_id, key, kid)
        return self.clients[client_id]

    def token(self, client_id: str, scope: str | None = None) -> str:
        response = self.token_response(client_id, scope)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def assertion(self, client_id: str) -> str:
        """A fresh ``private_key_jwt`` client assertion (RFC 7523) of a registered client."""
        client = self.clients[client_id]
        now = int(time.time())
        return jwt.encode(
            {
                "iss": client_id,
                "sub": client_id,
                "aud": f"{self.issuer}/oauth/token",
                "jti": secrets.token_urlsafe(16),
                "iat": now,
                "exp": now + 60,
            },
            client.key,
            algorithm="ES256",
            headers={"kid": client.kid},
        )

    def token_response(self, client_id: str, scope: str | None = None) -> Any:
        """The token endpoint's answer to a client-credentials grant (private_key_jwt)."""
        data = {
            "grant_type": "client_credentials",
            "client_assertion": self.assertion(client_id),
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        }
        if scope:
            data["scope"] = scope
        return self.api.post("/oauth/token", data=data)

    def citizen_token(self, name: str) -> str:
        """A citizen's portal token, as the authorization-code flow mints it after the
        IDCS + TOTP sign-in (that flow has its own tests in tests/identity/oauth)."""
        token, _ = self.oauth.issuer.access_token(
            client_id="portal",
            scope="openid citizen:self",
            subject=self.people[name],
            subject_kind="citizen",
        )
        return token

    def call(self, client_id: str, method: str, path: str, **kwargs: Any) -> Any:
        token = self.token(client_id)
        return self.api.request(
            method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs
        )

    def audit_size(self) -> int:
        return int(self.services.audit.size())


@pytest.fixture
def world(app, settings) -> Iterator[World]:  # type: ignore[no-untyped-def]
    w = build_world(app, settings)
    with w.api:  # the app's lifespan runs, as a server's does: its checkpointer signs
        yield w


def build_world(app, settings) -> World:  # type: ignore[no-untyped-def]
    services = app.state.services
    oauth = services.oauth
    api = TestClient(app, base_url=settings.issuer, raise_server_exceptions=False)
    w = World(api=api, oauth=oauth, services=services, issuer=settings.issuer)
    w.people["fatima"] = str(services.register.enrol(PersonIn(**FATIMA)))
    w.people["youssef"] = str(services.register.enrol(PersonIn(**YOUSSEF)))
    # Fatima heads a one-person RSU household with a synthetic declaration; Youssef has none.
    members, declaration = household_request(
        random.Random(7), [(w.people["fatima"], {**FATIMA, "role": "head"})]
    )
    services.households.register_household(members, declaration)
    w.register("cnss", "agency", "social", AGENCY_SCOPES, "amo_tadamon_enrolment asd_payment")
    w.register("anam", "agency", "social", AGENCY_SCOPES, "amo_tadamon_enrolment")
    w.register("ms_sante", "agency", "health", AGENCY_SCOPES, "maternal_health_followup")
    w.register("men", "agency", "education", AGENCY_SCOPES, "scholarship_outreach")
    w.register("office-fes", "office", "registry", "rnp:enrol rnp:rectify rsu:register")
    w.register("cndp", "auditor", "oversight", "audit:read")
    w.oauth.registry.add(
        name="portal",
        kind="portal",
        sector="citizens",
        jwks={
            "keys": [
                {
                    **ECAlgorithm.to_jwk(
                        ec.generate_private_key(ec.SECP256R1()).public_key(), as_dict=True
                    ),
                    "kid": "p1",
                }
            ]
        },
        scopes="openid citizen:self",
        client_id="portal",
        redirect_uris=["http://127.0.0.1:8000/portal/callback"],
    )
    return w
