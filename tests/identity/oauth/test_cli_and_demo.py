"""``sijill clients`` and the demo step, against a real migrated database."""

from __future__ import annotations

import json

import jwt
import pytest
from typer.testing import CliRunner

from tests.gateway.test_cli import run_sijill
from tests.identity.oauth.conftest import Agent, new_key, token_request


@pytest.fixture
def cli_env(settings, monkeypatch):  # type: ignore[no-untyped-def]
    settings.prepare_data_dir()  # a deployment's directory, as `sijill init` makes it
    monkeypatch.setenv("SIJILL_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SIJILL_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SIJILL_HOST", settings.host)
    monkeypatch.setenv("SIJILL_PORT", str(settings.port))
    from gateway.cli.clients import app

    return app


def test_clients_add_list_disable(cli_env, tmp_path):  # type: ignore[no-untyped-def]
    runner = CliRunner()
    _, public, private = new_key()
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps({"keys": [public]}))
    result = runner.invoke(
        cli_env,
        [
            "add",
            "--name",
            "ANAM",
            "--kind",
            "agency",
            "--sector",
            "health",
            "--jwks",
            str(jwks_file),
            "--scopes",
            "agency:lookup",
            "--purposes",
            "amo_tadamon_enrolment",
            "--client-id",
            "anam-test",
        ],
    )
    assert result.exit_code == 0, result.output
    listed = json.loads(runner.invoke(cli_env, ["list", "--json"]).output)
    assert listed == [
        {
            "client_id": "anam-test",
            "name": "ANAM",
            "kind": "agency",
            "sector": "health",
            "scopes": ["agency:lookup"],
            "purposes": ["amo_tadamon_enrolment"],
            "disabled": False,
            "dpop_bound_access_tokens": True,
            "tls_client_certificate_bound_access_tokens": False,
            "token_endpoint_auth_method": "private_key_jwt",
        }
    ]
    assert runner.invoke(cli_env, ["disable", "anam-test"]).exit_code == 0
    assert json.loads(runner.invoke(cli_env, ["list", "--json"]).output)[0]["disabled"]

    # A private JWK is refused with one readable line, exit status 2.
    jwks_file.write_text(json.dumps({"keys": [private]}))
    refused = runner.invoke(
        cli_env,
        [
            "add",
            "--name",
            "X",
            "--kind",
            "agency",
            "--sector",
            "health",
            "--jwks",
            str(jwks_file),
            "--scopes",
            "agency:lookup",
        ],
    )
    assert refused.exit_code == 2


def test_demo_step_writes_working_agency_credentials(api, oauth, settings):  # type: ignore[no-untyped-def]
    from rich.console import Console

    from gateway.demo import empty_credentials, register_demo_clients

    credentials = empty_credentials(settings)
    credentials["citizens"].append({"idcs": "1234567890", "totp_secret": None})
    register_demo_clients(settings, credentials, Console(quiet=True))

    sectors = {a["sector"] for a in credentials["agencies"]}
    assert len(sectors) == 2 and "social" in sectors
    assert set(credentials["office"]) == {"client_id", "private_jwk", "scopes"}
    assert set(credentials["auditor"]) == {
        "username",
        "password",
        "totp_secret",
        "client_id",
        "private_jwk",
    }
    assert credentials["citizens"][0]["totp_secret"]
    members = {"client_id", "name", "sector", "private_jwk", "scopes", "purposes"}
    # The demo's CNSS signs its officials in with an identity provider the gateway trusts.
    (with_idp,) = [a for a in credentials["agencies"] if "idp" in a]
    trusted = oauth.trusted_issuers.of(with_idp["client_id"])
    assert [t.issuer for t in trusted] == [with_idp["idp"]["issuer"]]
    for agency in credentials["agencies"]:
        assert set(agency) - {"idp"} == members
        private = agency["private_jwk"]
        agent = Agent(
            agency["client_id"],
            jwt.PyJWK(private).key,
            {k: v for k, v in private.items() if k != "d"},
            private,
            "ES256",
        )
        response = token_request(api, agent, scope="agency:eligibility")
        assert response.status_code == 200, response.text
    auditor = credentials["auditor"]
    private = auditor["private_jwk"]
    agent = Agent(auditor["client_id"], jwt.PyJWK(private).key, private, private, "ES256")
    assert token_request(api, agent, scope="audit:read").status_code == 200


def test_demo_step_rerun_rekeys_the_same_clients(api, oauth, settings):  # type: ignore[no-untyped-def]
    from rich.console import Console

    from gateway.demo import empty_credentials, register_demo_clients

    def agents() -> list[Agent]:
        credentials = empty_credentials(settings)
        register_demo_clients(settings, credentials, Console(quiet=True))
        return [
            Agent(
                a["client_id"],
                jwt.PyJWK(a["private_jwk"]).key,
                a["private_jwk"],
                a["private_jwk"],
                "ES256",
            )
            for a in credentials["agencies"]
        ]

    first, second = agents(), agents()
    assert [a.client_id for a in first] == [a.client_id for a in second] == ["cnss", "men"]
    assert token_request(api, second[0]).status_code == 200
    assert token_request(api, first[0]).status_code == 401  # the lost key no longer works


def test_keygen_makes_a_key_pair_the_token_endpoint_accepts(  # type: ignore[no-untyped-def]
    api, oauth, tmp_path
) -> None:
    private_file = tmp_path / "cnss.jwk"
    made = run_sijill(
        "clients", "keygen", "--client-id", "cnss", "--private-key", str(private_file)
    )
    assert made.returncode == 0, made.stderr
    document = json.loads(made.stdout)
    (public,) = document["keys"]
    assert public["kty"] == "EC" and public["crv"] == "P-256" and "d" not in public
    assert oct(private_file.stat().st_mode & 0o777) == "0o600"
    private = json.loads(private_file.read_text())
    assert private["kid"] == public["kid"] and "d" in private

    oauth.registry.add(
        name="CNSS",
        kind="agency",
        sector="social",
        jwks=document,
        scopes="agency:lookup",
        purposes="asd_payment",
        client_id="cnss",
    )
    agent = Agent("cnss", jwt.PyJWK(private).key, public, private, "ES256")
    assert token_request(api, agent, scope="agency:lookup").status_code == 200

    again = run_sijill(
        "clients", "keygen", "--client-id", "cnss", "--private-key", str(private_file)
    )
    assert again.returncode == 2 and "never overwrites" in again.stderr
    assert json.loads(private_file.read_text()) == private


def test_clients_list_json_and_table_show_full_client_ids(cli_env, oauth) -> None:  # type: ignore[no-untyped-def]
    long_id = "agence-nationale-de-l-assurance-maladie-" + "x" * 20
    _, public, _ = new_key()
    oauth.registry.add(
        name="ANAM",
        kind="agency",
        sector="social",
        jwks={"keys": [public]},
        scopes="agency:lookup",
        client_id=long_id,
    )
    runner = CliRunner()
    listed = runner.invoke(cli_env, ["list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [c["client_id"] for c in json.loads(listed.output)] == [long_id]
    table = runner.invoke(cli_env, ["list"], terminal_width=80)
    assert long_id in table.output
