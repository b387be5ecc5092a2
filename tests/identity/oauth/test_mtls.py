"""Mutual-TLS certificate-bound tokens (RFC 8705) behind a TLS-terminating proxy: issuance
binds the presented certificate's thumbprint, the token serves only with that certificate,
the certificate header is believed only from the trusted proxy, every refusal is a security
event, and a certificate-bound client cannot fall back to bearer tokens."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi.testclient import TestClient
from sqlalchemy import update

from audit import EntryFilter
from identity.oauth import ClientRegistryError, make_proof
from identity.oauth.tables import clients
from tests.identity.oauth.conftest import (
    Agent,
    assert_problem,
    client_assertion,
    new_key,
    token_request,
)

HEADER = "X-SSL-Client-Cert"
PROXY = "10.20.30.40"
ELSEWHERE = "192.0.2.9"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
def settings(tmp_path: Path, migrated_urls: dict[str, str]):  # type: ignore[no-untyped-def]
    from gateway.settings import load_settings

    return load_settings(
        data_dir=tmp_path / "data",
        database_url=migrated_urls["main"],
        host="127.0.0.1",
        port=8000,
        client_cert_header=HEADER,
        client_cert_proxies=f"{PROXY}/32, 2001:db8::/64",
    )


def _client_from(app: Any, settings: Any, address: str) -> Iterator[TestClient]:
    with TestClient(
        app, base_url=settings.issuer, raise_server_exceptions=False, client=(address, 50000)
    ) as c:
        yield c


@pytest.fixture
def proxy(oauth_app, settings):  # type: ignore[no-untyped-def]
    """Requests arriving through the trusted TLS-terminating proxy."""
    yield from _client_from(oauth_app, settings, PROXY)


@pytest.fixture
def stranger(oauth_app, settings):  # type: ignore[no-untyped-def]
    """Requests from an address that is not the proxy (a host inside the network)."""
    yield from _client_from(oauth_app, settings, ELSEWHERE)


def self_signed(key: Any, name: str = "agency") -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )


def forwarded(certificate: x509.Certificate) -> dict[str, str]:
    """The header nginx sets from ``$ssl_client_escaped_cert``: URL-encoded PEM."""
    return {HEADER: quote(certificate.public_bytes(Encoding.PEM).decode("ascii"), safe="")}


def thumbprint(certificate: x509.Certificate) -> str:
    digest = hashlib.sha256(certificate.public_bytes(Encoding.DER)).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def certificate_events(oauth_app: Any) -> list[Any]:
    services = oauth_app.state.services
    services.security_events.flush(final=True)
    found = services.audit.entries(EntryFilter(action="security.certificate_refused"))
    return [logged.entry for logged in found]


def reasons(oauth_app: Any) -> list[str]:
    return [entry.reasons[0] for entry in certificate_events(oauth_app)]


def _register(oauth: Any, **options: Any) -> Agent:
    key, public, private = new_key()
    client = oauth.registry.add(
        name="agency social",
        kind="agency",
        sector="social",
        jwks={"keys": [public]},
        scopes="agency:lookup",
        purposes="asd_payment",
        **options,
    )
    return Agent(client.client_id, key, public, private, "ES256")


@pytest.fixture
def bound(oauth):  # type: ignore[no-untyped-def]
    return _register(oauth, tls_bound=True)


@pytest.fixture
def certificate() -> x509.Certificate:
    return self_signed(ec.generate_private_key(ec.SECP256R1()))


def _token(api: TestClient, agent: Agent, certificate: x509.Certificate | None) -> Any:
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion(agent, str(api.base_url.join("/oauth/token"))),
    }
    headers = forwarded(certificate) if certificate is not None else {}
    return api.post("/oauth/token", data=data, headers=headers)


def _lookup(api: TestClient, token: str, certificate: x509.Certificate | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    if certificate is not None:
        headers.update(forwarded(certificate))
    return api.get("/test/lookup", headers=headers)


def test_issuance_binds_the_presented_certificate_and_introspection_shows_it(  # type: ignore[no-untyped-def]
    proxy, bound, certificate, settings
) -> None:
    response = _token(proxy, bound, certificate)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"  # RFC 8705 §3: still a bearer-scheme token
    assert claims(body["access_token"])["cnf"] == {"x5t#S256": thumbprint(certificate)}
    introspected = proxy.post(
        "/oauth/introspect",
        data={
            "token": body["access_token"],
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client_assertion(bound, settings.issuer),
        },
    )
    assert introspected.status_code == 200, introspected.text
    assert introspected.json()["cnf"] == {"x5t#S256": thumbprint(certificate)}


def test_a_certificate_bound_token_serves_with_its_certificate(proxy, bound, certificate) -> None:  # type: ignore[no-untyped-def]
    token = _token(proxy, bound, certificate).json()["access_token"]
    response = _lookup(proxy, token, certificate)
    assert response.status_code == 200, response.text
    assert response.json()["client_id"] == bound.client_id


def test_a_certificate_bound_token_is_refused_without_a_certificate(  # type: ignore[no-untyped-def]
    proxy, oauth_app, bound, certificate
) -> None:
    token = _token(proxy, bound, certificate).json()["access_token"]
    body = assert_problem(_lookup(proxy, token, None), 401)
    assert body["type"].endswith("/invalid-token")
    assert "bound to a client certificate" in body["detail"]
    assert reasons(oauth_app) == ["certificate_missing"]


def test_a_certificate_bound_token_is_refused_with_another_certificate(  # type: ignore[no-untyped-def]
    proxy, oauth_app, bound, certificate
) -> None:
    token = _token(proxy, bound, certificate).json()["access_token"]
    other = self_signed(ec.generate_private_key(ec.SECP256R1()))
    response = _lookup(proxy, token, other)
    body = assert_problem(response, 401)
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert "not the one this token is bound to" in body["detail"]
    events = certificate_events(oauth_app)
    assert [e.reasons[0] for e in events] == ["wrong_certificate"]
    assert events[0].actor["id"] == bound.client_id
    text = json.dumps([e.reasons for e in events])
    assert thumbprint(other) not in text and thumbprint(certificate) not in text


def test_the_certificate_header_from_an_untrusted_address_is_ignored_and_recorded(  # type: ignore[no-untyped-def]
    proxy, stranger, oauth_app, bound, certificate
) -> None:
    token = _token(proxy, bound, certificate).json()["access_token"]
    # The token and a copy of the certificate (public, unlike its key) sent around the proxy.
    body = assert_problem(_lookup(stranger, token, certificate), 401)
    assert "bound to a client certificate" in body["detail"]
    assert sorted(reasons(oauth_app)) == ["certificate_missing", "untrusted_source"]
    # Nor does the token endpoint bind to a certificate the proxy did not vouch for.
    refused = _token(stranger, bound, certificate)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "invalid_request"


def test_an_unreadable_certificate_from_the_proxy_binds_nothing_and_is_recorded(  # type: ignore[no-untyped-def]
    proxy, oauth_app, bound, certificate
) -> None:
    token = _token(proxy, bound, certificate).json()["access_token"]
    garbled = {HEADER: quote("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----")}
    response = proxy.get("/test/lookup", headers={"Authorization": f"Bearer {token}", **garbled})
    assert_problem(response, 401)
    assert sorted(reasons(oauth_app)) == ["certificate_missing", "malformed"]


def test_a_certificate_bound_client_gets_no_token_without_a_certificate(  # type: ignore[no-untyped-def]
    proxy, oauth_app, bound
) -> None:
    response = _token(proxy, bound, None)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["error"] == "invalid_request"
    assert "RFC 8705" in response.json()["error_description"]
    events = certificate_events(oauth_app)
    assert [e.reasons[0] for e in events] == ["certificate_required"]
    assert events[0].actor["id"] == bound.client_id


def test_a_certificate_bound_client_cannot_fall_back_to_bearer(  # type: ignore[no-untyped-def]
    proxy, oauth, oauth_app, agency, certificate
) -> None:
    bearer = token_request(proxy, agency).json()["access_token"]
    assert "cnf" not in claims(bearer)
    assert _lookup(proxy, bearer, None).status_code == 200
    with oauth.registry._engine.begin() as conn:
        conn.execute(
            update(clients)
            .where(clients.c.client_id == agency.client_id)
            .values(tls_client_certificate_bound_access_tokens=True)
        )
    # Neither without the certificate nor with it: the token names no certificate.
    for shown in (None, certificate):
        body = assert_problem(_lookup(proxy, bearer, shown), 401)
        assert "bound to its client certificate" in body["detail"]
    assert reasons(oauth_app) == ["bearer_not_allowed", "bearer_not_allowed"]
    fresh = _token(proxy, agency, certificate).json()["access_token"]
    assert _lookup(proxy, fresh, certificate).status_code == 200


def test_a_sender_constrained_client_binds_by_dpop_or_by_certificate_never_bearer(  # type: ignore[no-untyped-def]
    proxy, oauth, settings, certificate
) -> None:
    agent = _register(oauth, dpop_bound=True)
    refused = _token(proxy, agent, None)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_dpop_proof"
    by_certificate = _token(proxy, agent, certificate).json()
    assert claims(by_certificate["access_token"])["cnf"] == {"x5t#S256": thumbprint(certificate)}
    assert _lookup(proxy, by_certificate["access_token"], certificate).status_code == 200
    assert _lookup(proxy, by_certificate["access_token"], None).status_code == 401
    key, public, _ = new_key()
    public.pop("kid")
    proof = make_proof(key, public, method="POST", url=f"{settings.issuer}/oauth/token")
    by_dpop = token_request(proxy, agent, dpop=proof).json()
    assert (
        by_dpop["token_type"] == "DPoP" and "x5t#S256" not in claims(by_dpop["access_token"])["cnf"]
    )


def _self_signed_client(oauth: Any) -> tuple[str, x509.Certificate]:
    key, public, _ = new_key()
    certificate = self_signed(key)
    public["x5c"] = [base64.b64encode(certificate.public_bytes(Encoding.DER)).decode()]
    client = oauth.registry.add(
        name="agency with a certificate",
        kind="agency",
        sector="social",
        jwks={"keys": [public]},
        scopes="agency:lookup",
        purposes="asd_payment",
        tls_bound=True,
        auth_method="self_signed_tls_client_auth",
    )
    return client.client_id, certificate


def test_self_signed_tls_client_auth_authenticates_by_the_registered_certificate(  # type: ignore[no-untyped-def]
    proxy, oauth, oauth_app
) -> None:
    client_id, certificate = _self_signed_client(oauth)
    form = {"grant_type": "client_credentials", "client_id": client_id}
    granted = proxy.post("/oauth/token", data=form, headers=forwarded(certificate))
    assert granted.status_code == 200, granted.text
    token = granted.json()["access_token"]
    assert claims(token)["cnf"] == {"x5t#S256": thumbprint(certificate)}
    assert _lookup(proxy, token, certificate).status_code == 200
    other = self_signed(ec.generate_private_key(ec.SECP256R1()))
    refused = proxy.post("/oauth/token", data=form, headers=forwarded(other))
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    without = proxy.post("/oauth/token", data=form)
    assert without.status_code == 401 and without.json()["error"] == "invalid_client"
    assert reasons(oauth_app) == ["not_registered"]


def test_registration_refuses_a_certificate_of_another_key(oauth) -> None:  # type: ignore[no-untyped-def]
    _, public, _ = new_key()
    foreign = self_signed(ec.generate_private_key(ec.SECP256R1()))
    public["x5c"] = [base64.b64encode(foreign.public_bytes(Encoding.DER)).decode()]
    with pytest.raises(ClientRegistryError, match="x5c"):
        oauth.registry.add(
            name="a",
            kind="agency",
            sector="social",
            jwks={"keys": [public]},
            scopes="agency:lookup",
        )
    _, bare, _ = new_key()
    with pytest.raises(ClientRegistryError, match="needs a certificate"):
        oauth.registry.add(
            name="b",
            kind="agency",
            sector="social",
            jwks={"keys": [bare]},
            scopes="agency:lookup",
            auth_method="self_signed_tls_client_auth",
        )


def test_metadata_advertises_certificate_bound_tokens(proxy) -> None:  # type: ignore[no-untyped-def]
    meta = proxy.get("/.well-known/oauth-authorization-server").json()
    assert meta["tls_client_certificate_bound_access_tokens"] is True
    assert "self_signed_tls_client_auth" in meta["token_endpoint_auth_methods_supported"]
    assert "private_key_jwt" in meta["token_endpoint_auth_methods_supported"]


def test_the_command_line_registers_a_certificate_bound_client(  # type: ignore[no-untyped-def]
    oauth, settings, tmp_path, monkeypatch
) -> None:
    from typer.testing import CliRunner

    from gateway.cli.clients import app

    settings.prepare_data_dir()
    monkeypatch.setenv("SIJILL_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SIJILL_DATA_DIR", str(settings.data_dir))
    key, public, _ = new_key()
    public["x5c"] = [base64.b64encode(self_signed(key).public_bytes(Encoding.DER)).decode()]
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [public]}))
    result = CliRunner().invoke(
        app,
        ["add", "--name", "mtls", "--client-id", "a-mtls", "--kind", "agency",
         "--sector", "social", "--jwks", str(jwks), "--scopes", "agency:lookup",
         "--mtls", "--auth-method", "self_signed_tls_client_auth"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    client = oauth.registry.get("a-mtls")
    assert client.tls_bound is True and client.auth_method == "self_signed_tls_client_auth"
    assert client.dpop_bound is True  # an agency's default; the certificate satisfies it


def test_a_certificate_header_without_trusted_proxies_is_a_settings_error() -> None:
    from gateway.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="SIJILL_CLIENT_CERT_PROXIES"):
        load_settings(client_cert_header=HEADER)
    with pytest.raises(SettingsError, match="SIJILL_CLIENT_CERT_PROXIES"):
        load_settings(client_cert_header=HEADER, client_cert_proxies="not-a-network")
