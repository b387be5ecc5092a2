"""``sijill clients``: the OAuth client registry (agencies, offices, auditors, the portal)."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

import typer

from gateway.cli import CliError, friendly, out, print_json, print_table, settings_from
from gateway.deploy import client_keypair, open_oauth, record_change
from identity.oauth import CLIENT_AUTH_METHODS, CLIENT_KINDS, ClientRegistryError

NAME = "clients"
app = typer.Typer(
    help="OAuth clients: agencies, registration offices, auditors, the portal.",
    no_args_is_help=True,
)


def _jwks_document(path: Path | None, inline: str | None) -> Any:
    """The JWKS read from ``path``, or parsed from ``inline``."""
    try:
        return json.loads(path.read_text() if path is not None else str(inline))
    except OSError as exc:
        raise CliError(f"cannot read the JWKS file: {exc.strerror}") from None
    except ValueError:
        raise CliError("the JWKS is not JSON") from None


@app.command("add")
@friendly
def add(
    name: str = typer.Option(..., help="Display name, e.g. 'CNSS (AMO Tadamon)'"),
    kind: str = typer.Option(..., help=f"One of: {', '.join(CLIENT_KINDS)}"),
    sector: str = typer.Option(..., help="Sector whose pseudonyms it sees, e.g. social"),
    jwks: Path = typer.Option(
        ..., help="File with the client's PUBLIC JWKS (ES256 or Ed25519)", exists=False
    ),
    scopes: str = typer.Option(..., help="Space-separated scopes, e.g. 'agency:lookup'"),
    purposes: str = typer.Option("", help="Space-separated declared purposes"),
    redirect_uri: list[str] = typer.Option([], help="Redirect URI (code flow clients)"),
    client_id: str | None = typer.Option(None, help="Client id (generated if omitted)"),
    dpop: bool | None = typer.Option(
        None,
        "--dpop/--no-dpop",
        help="Issue DPoP-bound tokens only, never bearer ones (default: yes for agencies)",
    ),
    mtls: bool = typer.Option(
        False,
        "--mtls/--no-mtls",
        help="Bind every token to the client certificate presented at the token endpoint "
        "(RFC 8705 tls_client_certificate_bound_access_tokens); the client must come through "
        "the proxy of SIJILL_CLIENT_CERT_PROXIES",
    ),
    auth_method: str = typer.Option(
        "private_key_jwt",
        help=f"Token endpoint authentication, one of: {', '.join(CLIENT_AUTH_METHODS)} "
        "(self_signed_tls_client_auth: the JWKS holds the certificate, x5c or x5t#S256)",
    ),
    data_dir: str | None = typer.Option(None, help="Data directory"),
) -> None:
    """Register a client with its public keys; no secret is ever issued."""
    document = _jwks_document(jwks, None)
    with open_oauth(settings_from(data_dir)) as oauth:
        try:
            client = oauth.registry.add(
                name=name,
                kind=kind,
                sector=sector,
                jwks=document,
                scopes=scopes,
                purposes=purposes,
                redirect_uris=redirect_uri,
                client_id=client_id,
                # An agency's or a law-enforcement authority's token must not be usable by
                # whoever copies it (RFC 9449, RFC 8705): it must be sender-constrained, by DPoP
                # or by its certificate.
                dpop_bound=kind in {"agency", "law_enforcement"} if dpop is None else dpop,
                tls_bound=mtls,
                auth_method=auth_method,
            )
        except ClientRegistryError as exc:
            raise CliError(str(exc)) from None
    record_change(
        settings_from(data_dir),
        "client_registered",
        client=client.client_id,
        client_kind=client.kind,
    )
    out.print(
        f"registered client [bold]{client.client_id}[/] ({client.kind}, sector {client.sector})"
    )


@app.command("keygen")
@friendly
def keygen(
    client_id: str = typer.Option(..., help="The agency's client id; names the key (kid)"),
    private_key: Path = typer.Option(
        ..., help="File for the PRIVATE JWK (created mode 0600; it never leaves the agency)"
    ),
    jwks: Path | None = typer.Option(
        None, help="File for the public JWKS (printed on stdout if omitted)"
    ),
) -> None:
    """Make an agency's EC P-256 (ES256) key pair: keep the private JWK, hand the public JWKS
    to the registry's operator for sijill clients add --jwks. Runs anywhere: no data dir."""
    public, private = client_keypair(f"{client_id}-{secrets.token_hex(2)}")
    try:
        # O_EXCL: an agency's existing key is never overwritten (its clients would lose access).
        fd = os.open(private_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CliError(f"{private_key} exists; keygen never overwrites a private key") from None
    except OSError as exc:
        raise CliError(f"cannot create {private_key}: {exc.strerror}") from None
    with os.fdopen(fd, "w") as fh:
        json.dump(private, fh, indent=2)
    document = {"keys": [public]}
    if jwks is None:
        print_json(document)
        return
    jwks.write_text(json.dumps(document, indent=2) + "\n")
    out.print(f"private key: {private_key} (keep it); public JWKS: {jwks} (send it)")


@app.command("trust-idp")
@friendly
def trust_idp(
    client_id: str = typer.Argument(..., help="The agency client whose officials it signs in"),
    issuer: str = typer.Option(..., help="The identity provider's issuer identifier (https URL)"),
    jwks: Path | None = typer.Option(
        None, help="File with the provider's PUBLIC JWKS (ES256 or Ed25519)"
    ),
    jwks_json: str | None = typer.Option(None, help="The provider's public JWKS, inline"),
    data_dir: str | None = typer.Option(None, help="Data directory"),
) -> None:
    """Trust an agency's identity provider for its officials' ID tokens (RFC 8693 token
    exchange); run again to replace the provider's keys."""
    if (jwks is None) == (jwks_json is None):
        raise CliError("give the provider's keys with exactly one of --jwks or --jwks-json")
    document = _jwks_document(jwks, jwks_json)
    with open_oauth(settings_from(data_dir)) as oauth:
        try:
            trusted = oauth.trust_issuer(client_id, issuer, document)
        except ClientRegistryError as exc:
            raise CliError(str(exc)) from None
    out.print(
        f"client {client_id} trusts {trusted.issuer} "
        f"({len(trusted.jwks['keys'])} key(s)) for its officials' ID tokens"
    )


@app.command("distrust-idp")
@friendly
def distrust_idp(
    client_id: str = typer.Argument(..., help="The agency client"),
    issuer: str = typer.Option(..., help="The identity provider's issuer identifier"),
    data_dir: str | None = typer.Option(None, help="Data directory"),
) -> None:
    """Stop trusting an agency's identity provider (a compromised or retired one): its ID
    tokens are refused from the next exchange; tokens already issued live out their minutes."""
    with open_oauth(settings_from(data_dir)) as oauth:
        if not oauth.trusted_issuers.distrust(client_id, issuer):
            raise CliError("this client does not trust this issuer")
    out.print(f"client {client_id} no longer trusts {issuer}")


@app.command("list")
@friendly
def list_(
    data_dir: str | None = typer.Option(None, help="Data directory"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (full ids, for scripts)"),
) -> None:
    """List registered clients."""
    with open_oauth(settings_from(data_dir)) as oauth:
        clients = oauth.registry.list()
    if as_json:
        print_json(
            [
                {
                    "client_id": c.client_id,
                    "name": c.name,
                    "kind": c.kind,
                    "sector": c.sector,
                    "scopes": list(c.scopes),
                    "purposes": list(c.purposes),
                    "disabled": c.disabled,
                    "dpop_bound_access_tokens": c.dpop_bound,
                    "tls_client_certificate_bound_access_tokens": c.tls_bound,
                    "token_endpoint_auth_method": c.auth_method,
                }
                for c in clients
            ]
        )
        return
    print_table(
        ("client_id", "name", "kind", "sector", "scopes", "purposes", "status"),
        [
            (
                c.client_id,
                c.name,
                c.kind,
                c.sector,
                " ".join(c.scopes),
                " ".join(c.purposes),
                "disabled" if c.disabled else "active",
            )
            for c in clients
        ],
        ids=("client_id",),
    )


@app.command("disable")
@friendly
def disable(
    client_id: str = typer.Argument(..., help="Client to disable"),
    data_dir: str | None = typer.Option(None, help="Data directory"),
) -> None:
    """Disable a client: no new tokens, and its live tokens are refused at once."""
    settings = settings_from(data_dir)
    with open_oauth(settings) as oauth:
        if not oauth.registry.set_disabled(client_id):
            raise CliError("no such client")
        client = oauth.registry.get(client_id)
    assert client is not None
    record_change(settings, "client_disabled", client=client.client_id, client_kind=client.kind)
    out.print(f"client {client_id} disabled")


@app.command("rotate-signing-key")
@friendly
def rotate_signing_key(data_dir: str | None = typer.Option(None, help="Data directory")) -> None:
    """Start signing tokens with a new key; the previous one stays published for overlap."""
    with open_oauth(settings_from(data_dir)) as oauth:
        key = oauth.keys.rotate()
    out.print(
        f"new signing key {key.kid}; the previous key stays in the JWKS until the next rotation"
    )


@app.command("add-user")
@friendly
def add_user(
    username: str = typer.Option(..., help="Login name"),
    kind: str = typer.Option(..., help="officer or auditor"),
    data_dir: str | None = typer.Option(None, help="Data directory"),
) -> None:
    """Create an officer or auditor account; prints the TOTP secret to activate once."""
    password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with open_oauth(settings_from(data_dir)) as oauth:
        if kind not in {"officer", "auditor"}:
            raise CliError("kind must be officer or auditor")
        try:
            secret = oauth.staff(kind).add_user(username, password)
        except ValueError as exc:
            raise CliError(str(exc)) from None
    out.print(f"account {username} created; TOTP secret (shown once): {secret}")
