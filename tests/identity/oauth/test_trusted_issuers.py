"""An agency's own identity provider, registered as a trusted issuer of its officials' ID
tokens (``sijill clients trust-idp``): agencies only, public keys only, https issuers only."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from gateway.cli.clients import app
from identity.oauth import ClientRegistryError
from tests.identity.oauth.conftest import Agent, new_key, register


def _cli(settings: Any, monkeypatch: Any, *args: str) -> Any:
    settings.prepare_data_dir()
    monkeypatch.setenv("SIJILL_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SIJILL_DATA_DIR", str(settings.data_dir))
    return CliRunner().invoke(app, list(args))


def test_the_command_line_trusts_replaces_and_withdraws_an_agencys_provider(
    oauth, agency: Agent, settings, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    _, first, _ = new_key()
    jwks = tmp_path / "idp.json"
    jwks.write_text(json.dumps({"keys": [first]}))
    issuer = "https://idp.agency.example"
    result = _cli(settings, monkeypatch, "trust-idp", agency.client_id, "--issuer", issuer,
                  "--jwks", str(jwks))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [t.issuer for t in oauth.trusted_issuers.of(agency.client_id)] == [issuer]
    _, second, _ = new_key()
    inline = json.dumps({"keys": [second]})
    result = _cli(settings, monkeypatch, "trust-idp", agency.client_id, "--issuer", issuer,
                  "--jwks-json", inline)  # fmt: skip
    assert result.exit_code == 0, result.output
    (trusted,) = oauth.trusted_issuers.of(agency.client_id)
    assert trusted.jwks["keys"][0]["kid"] == second["kid"]
    result = _cli(settings, monkeypatch, "distrust-idp", agency.client_id, "--issuer", issuer)
    assert result.exit_code == 0, result.output
    assert oauth.trusted_issuers.of(agency.client_id) == []
    again = _cli(settings, monkeypatch, "distrust-idp", agency.client_id, "--issuer", issuer)
    assert again.exit_code != 0


def test_only_an_agency_may_trust_a_provider(oauth) -> None:  # type: ignore[no-untyped-def]
    office = register(oauth, kind="office", scopes="rnp:enrol")
    _, public, _ = new_key()
    with pytest.raises(ClientRegistryError, match="only an agency"):
        oauth.trust_issuer(office.client_id, "https://idp.example", {"keys": [public]})


@pytest.mark.parametrize(
    "issuer", ["http://idp.example", "https://idp.example/?tenant=1", "https://idp#x", ""]
)
def test_an_issuer_that_is_not_a_plain_https_url_is_refused(
    oauth, agency: Agent, issuer: str
) -> None:  # type: ignore[no-untyped-def]
    _, public, _ = new_key()
    with pytest.raises(ClientRegistryError, match="issuer"):
        oauth.trust_issuer(agency.client_id, issuer, {"keys": [public]})


def test_a_provider_key_with_private_members_is_refused(oauth, agency: Agent) -> None:  # type: ignore[no-untyped-def]
    _, _, private = new_key()
    with pytest.raises(ClientRegistryError, match="public keys only"):
        oauth.trust_issuer(agency.client_id, "https://idp.example", {"keys": [private]})
