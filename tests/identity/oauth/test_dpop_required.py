"""Sender-constrained tokens required (RFC 9449 §5.2, ``dpop_bound_access_tokens``): such a
client gets DPoP-bound tokens only, and a bearer token of it is refused at the API."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from identity.oauth import make_proof
from identity.oauth.tables import clients
from tests.identity.oauth.conftest import Agent, assert_problem, new_key, token_request


def _require_dpop(oauth: Any, agent: Agent) -> None:
    with oauth.registry._engine.begin() as conn:
        conn.execute(
            update(clients)
            .where(clients.c.client_id == agent.client_id)
            .values(dpop_bound_access_tokens=True)
        )


def test_a_dpop_bound_client_gets_no_bearer_token(api, oauth, agency, settings) -> None:  # type: ignore[no-untyped-def]
    _require_dpop(oauth, agency)
    refused = token_request(api, agency)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "invalid_dpop_proof"
    key, public, _ = new_key()
    public.pop("kid")
    proof = make_proof(key, public, method="POST", url=f"{settings.issuer}/oauth/token")
    granted = token_request(api, agency, dpop=proof)
    assert granted.status_code == 200, granted.text
    assert granted.json()["token_type"] == "DPoP"


def test_a_bearer_token_of_a_client_now_dpop_bound_is_refused(api, oauth, agency) -> None:  # type: ignore[no-untyped-def]
    bearer = token_request(api, agency).json()["access_token"]
    headers = {"Authorization": f"Bearer {bearer}"}
    assert api.get("/test/lookup", headers=headers).status_code == 200
    _require_dpop(oauth, agency)
    body = assert_problem(api.get("/test/lookup", headers=headers), 401)
    assert "must use DPoP-bound tokens" in body["detail"]


def test_the_command_line_registers_agencies_dpop_bound_by_default(
    oauth, settings, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    import json

    from typer.testing import CliRunner

    from gateway.cli.clients import app

    settings.prepare_data_dir()
    monkeypatch.setenv("SIJILL_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SIJILL_DATA_DIR", str(settings.data_dir))
    _, public, _ = new_key()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [public]}))
    base = ["add", "--kind", "agency", "--sector", "social", "--jwks", str(jwks),
            "--scopes", "agency:lookup", "--purposes", "asd_payment"]  # fmt: skip
    for name, extra in (("bound", []), ("bearer", ["--no-dpop"])):
        result = CliRunner().invoke(
            app, [*base, "--name", name, "--client-id", f"a-{name}", *extra]
        )
        assert result.exit_code == 0, result.output
    assert oauth.registry.get("a-bound").dpop_bound is True
    assert oauth.registry.get("a-bearer").dpop_bound is False
