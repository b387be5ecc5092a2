"""Security events on the record (issue 25): every refusal kind lands in the audit log as a
pseudonymous ``security.<kind>`` entry with no personal data and no secret, a flood is
bounded with its true count, the refusal never depends on the log, and auditors filter them."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import secrets
import time
from typing import Any

import pyotp
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from audit import AuditUnavailable, EntryFilter
from gateway.security import SECURITY_KINDS
from identity.oauth import make_proof
from identity.oauth.login import MAX_FAILURES
from tests.gateway.conftest import FATIMA, World

LOOKUP = "/v1/agency/lookup"
BODY = {"cnie": FATIMA["cnie"], "purpose": "amo_tadamon_enrolment"}


def _assertion(world: World, client_id: str, key: Any = None) -> str:
    return world.assertion(client_id, key)


def _token_form(assertion: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_assertion": assertion,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    }


def _events(world: World, kind: str | None = None) -> list[dict[str, Any]]:
    """The security events on the record, as the auditor route lists them."""
    world.services.security_events.flush(final=True)
    found: list[dict[str, Any]] = []
    after = None
    while True:
        params: dict[str, Any] = {"security": kind or "any", "limit": 500}
        if after is not None:
            params["after"] = after
        response = world.call("cndp", "GET", "/v1/audit/entries", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        found.extend(body["entries"])
        after = body["next_after"]
        if after is None:
            return found


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _no_secret_or_personal_data(world: World, entries: list[dict[str, Any]], *secret: str) -> None:
    text = json.dumps(entries, ensure_ascii=False)
    for value in FATIMA.values():
        assert value not in text
    for idcs in world.people.values():
        assert idcs not in text
    for value in secret:
        assert value not in text
    assert "testclient" not in text  # the source address, never in the clear


def test_refused_tokens_land_in_the_log_with_their_reason(world: World) -> None:
    good = world.token("cnss")
    header, payload, signature = good.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    issuer = world.oauth.issuer
    ttl, issuer.ttl_s = issuer.ttl_s, -3600
    try:
        expired = world.token("cnss")
    finally:
        issuer.ttl_s = ttl
    revoked = world.token("anam")
    answer = world.api.post(
        "/oauth/revoke", data={"token": revoked, **_token_form(_assertion(world, "anam"))}
    )
    assert answer.status_code == 200, answer.text
    for token in (forged, expired, revoked, "not-a-jwt"):
        refused = world.api.post(LOOKUP, json=BODY, headers=_bearer(token))
        assert refused.status_code == 401

    events = _events(world, "token_refused")
    by_reason = {e["reasons"][0]: e for e in events}
    assert {"bad_signature", "expired", "revoked", "malformed"} <= set(by_reason)
    assert by_reason["expired"]["actor"] == {"kind": "agency", "id": "cnss", "sector": "social"}
    assert by_reason["revoked"]["actor"]["id"] == "anam"
    assert by_reason["malformed"]["actor"] == {"kind": "system", "id": "gateway", "sector": None}
    for event in events:
        assert event["action"] == "security.token_refused"
        assert event["outcome"] == "deny"
        assert f"route={LOOKUP}" in event["reasons"]
        assert any(r.startswith("source=") for r in event["reasons"])
    _no_secret_or_personal_data(world, events, good, forged, expired, revoked)


def test_refused_client_assertions_land_in_the_log(world: World) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())
    forged = _assertion(world, "cnss", key=stranger)
    assert world.api.post("/oauth/token", data=_token_form(forged)).status_code == 401
    replayed = _assertion(world, "anam")
    assert world.api.post("/oauth/token", data=_token_form(replayed)).status_code == 200
    assert world.api.post("/oauth/token", data=_token_form(replayed)).status_code == 401

    events = _events(world, "client_assertion_refused")
    reasons = {(e["actor"]["id"], e["reasons"][0]) for e in events}
    assert reasons == {("cnss", "invalid"), ("anam", "replayed")}
    assert all("route=/oauth/token" in e["reasons"] for e in events)
    _no_secret_or_personal_data(world, events, forged, replayed)


def test_dpop_failures_land_in_the_log(world: World) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    token_url = f"{world.issuer}/oauth/token"
    proof = make_proof(key, jwk, method="POST", url=token_url)
    form = _token_form(_assertion(world, "cnss"))
    issued = world.api.post("/oauth/token", data=form, headers={"DPoP": proof})
    assert issued.status_code == 200, issued.text
    bound = issued.json()["access_token"]
    # A bound token presented as a bearer token; then a proof for another URL; then a replay.
    assert world.api.post(LOOKUP, json=BODY, headers=_bearer(bound)).status_code == 401
    wrong_url = make_proof(key, jwk, method="POST", url=token_url, access_token=bound)
    dpop = {"Authorization": f"DPoP {bound}", "DPoP": wrong_url}
    assert world.api.post(LOOKUP, json=BODY, headers=dpop).status_code == 401
    right = make_proof(key, jwk, method="POST", url=world.issuer + LOOKUP, access_token=bound)
    dpop = {"Authorization": f"DPoP {bound}", "DPoP": right}
    assert world.api.post(LOOKUP, json=BODY, headers=dpop).status_code == 200
    assert world.api.post(LOOKUP, json=BODY, headers=dpop).status_code == 401

    events = _events(world, "dpop_refused")
    reasons = [e["reasons"][0] for e in events]
    assert sorted(reasons) == ["bound_token_as_bearer", "invalid", "replayed"]
    assert {e["actor"]["id"] for e in events} == {"cnss"}
    _no_secret_or_personal_data(world, events, bound, proof, right)


def _pkce_params() -> dict[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return {
        "response_type": "code",
        "client_id": "portal",
        "redirect_uri": "http://127.0.0.1:8000/portal/callback",
        "scope": "openid citizen:self",
        "state": "s",
        "nonce": "n",
        "code_challenge": base64.urlsafe_b64encode(digest).rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }


def _sign_in(world: World, params: dict[str, str], **fields: str) -> int:
    page = world.api.get("/oauth/authorize", params=params)
    assert page.status_code == 200, page.text
    csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    answer = world.api.post(
        "/oauth/authorize", data={**params, "csrf": csrf, **fields}, follow_redirects=False
    )
    return int(answer.status_code)


def test_sign_in_failures_and_the_lockout_land_in_the_log_under_a_keyed_tag(
    world: World,
) -> None:
    idcs = world.people["fatima"]
    secret = world.oauth.citizens.enrol(idcs)
    totp = pyotp.TOTP(secret)
    wrong = f"{(int(totp.now()) + 1) % 1_000_000:06d}"
    params = _pkce_params()
    for _ in range(MAX_FAILURES):
        assert _sign_in(world, params, idcs=idcs, code=wrong) == 401
    assert _sign_in(world, params, idcs=idcs, code=totp.now()) == 401

    failed = _events(world, "sign_in_failed")
    locked = _events(world, "account_locked")
    assert failed and locked
    tags = {e["subject"] for e in failed + locked}
    assert len(tags) == 1 and None not in tags  # one account, one tag, linkable by auditors
    # Not the person's subject tag: the attempt is not filed in her access log.
    assert tags != {world.services.vault.subject_tag(idcs)}
    assert all(e["reasons"][0].startswith("citizen_") for e in failed + locked)
    assert all("route=/oauth/authorize" in e["reasons"] for e in failed + locked)
    _no_secret_or_personal_data(world, failed + locked, secret, wrong)


def test_rate_limit_refusals_land_in_the_log(world: World) -> None:
    limiter = world.services.rate_limiter
    limiter.rate, limiter.burst = 0.01, 1
    headers = _bearer(world.token("cnss"))
    statuses = [world.api.post(LOOKUP, json=BODY, headers=headers).status_code for _ in range(3)]
    assert statuses == [200, 429, 429]
    [first, second] = _events(world, "rate_limited")
    assert first["actor"]["id"] == "cnss" and first["reasons"][0] == "over_rate"
    assert second["reasons"][0] == "over_rate"


def test_client_registry_changes_land_in_the_log(
    world: World, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from gateway.cli.clients import app as cli

    key = ec.generate_private_key(ec.SECP256R1())
    jwks = settings.data_dir / "new.jwks"
    jwks.write_text(
        json.dumps({"keys": [{**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "k"}]})
    )
    common = ["--data-dir", str(settings.data_dir)]
    # The command sets these for its own settings; the test puts them back afterwards.
    monkeypatch.setenv("SIJILL_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SIJILL_DATABASE_URL", settings.database_url)
    env: dict[str, str] = {}
    runner = CliRunner()
    added = runner.invoke(
        cli,
        ["add", "--name", "ONEE", "--kind", "agency", "--sector", "social",
         "--jwks", str(jwks), "--scopes", "agency:lookup", "--client-id", "onee", *common],
        env=env,
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    disabled = runner.invoke(cli, ["disable", "onee", *common], env=env)
    assert disabled.exit_code == 0, disabled.output

    registered = _events(world, "client_registered")
    gone = _events(world, "client_disabled")
    assert [e["reasons"] for e in registered] == [
        ["client_registered", "client=onee", "client_kind=agency"]
    ]
    assert [e["reasons"] for e in gone] == [
        ["client_disabled", "client=onee", "client_kind=agency"]
    ]
    assert registered[0]["outcome"] == "allow"
    assert registered[0]["actor"] == {"kind": "system", "id": "operator", "sector": None}


def test_a_flood_of_refused_tokens_gives_a_bounded_number_of_entries_with_the_true_count(
    world: World,
) -> None:
    flood = 2_000  # 400 times the entries a window may hold: the bound and the count both show
    before = world.audit_size()
    headers = _bearer("a.b.c")
    started = time.monotonic()
    for _ in range(flood):
        assert world.api.post(LOOKUP, json=BODY, headers=headers).status_code == 401
    events = _events(world, "token_refused")
    recorder = world.services.security_events
    # One source, one kind: per window at most per_window entries and one summary.
    windows = math.ceil((time.monotonic() - started) / recorder.window_s) + 1
    assert len(events) <= windows * (recorder.per_window + 1)
    summaries = [e for e in events if e["reasons"][0] == "summary"]
    singles = [e for e in events if e["reasons"][0] != "summary"]
    counted = sum(
        int(r.split("=", 1)[1]) for e in summaries for r in e["reasons"] if r.startswith("count=")
    )
    assert len(singles) + counted == flood
    assert world.audit_size() - before < 100
    metrics = world.api.get("/metrics").text
    line = next(
        ln for ln in metrics.splitlines()
        if ln.startswith('sijill_security_events_total{kind="token_refused"}')
    )  # fmt: skip
    assert float(line.split()[-1]) >= flood


def test_the_refusal_stands_when_the_log_is_down(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*_args: object, **_kwargs: object) -> None:
        raise AuditUnavailable("down")

    monkeypatch.setattr(world.services.audit, "append_many", unavailable)
    refused = world.api.post(LOOKUP, json=BODY, headers=_bearer("x.y.z"))
    assert refused.status_code == 401
    assert world.services.security_events.flush(final=True) == 0  # lost, and said so


def test_the_auditor_route_filters_security_events_by_kind(world: World) -> None:
    world.api.post(LOOKUP, json=BODY, headers=_bearer("x.y.z"))
    stranger = ec.generate_private_key(ec.SECP256R1())
    world.api.post("/oauth/token", data=_token_form(_assertion(world, "cnss", key=stranger)))
    every = _events(world)
    assert {e["action"] for e in every} >= {
        "security.token_refused",
        "security.client_assertion_refused",
    }
    assert all(e["action"].startswith("security.") for e in every)
    only = _events(world, "client_assertion_refused")
    assert only and {e["action"] for e in only} == {"security.client_assertion_refused"}
    wrong = world.call("cndp", "GET", "/v1/audit/entries", params={"security": "nonsense"})
    assert wrong.status_code == 422
    # Auditors only: an agency cannot read them.
    denied = world.call("cnss", "GET", "/v1/audit/entries", params={"security": "any"})
    assert denied.status_code == 403
    assert set(SECURITY_KINDS) >= {e["action"].split(".", 1)[1] for e in every}


def test_stats_count_security_events(world: World) -> None:
    world.api.post(LOOKUP, json=BODY, headers=_bearer("x.y.z"))
    world.services.security_events.flush(final=True)
    assert world.services.audit.entries(EntryFilter(action_prefix="security."))
    stats = world.call("cndp", "GET", "/v1/audit/stats")
    assert stats.status_code == 200
    assert "security.token_refused" in stats.text
