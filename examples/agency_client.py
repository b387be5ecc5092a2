"""A complete agency program against Sijill: OAuth 2.0 client credentials with
``private_key_jwt`` (RFC 7523) through Authlib's own client, DPoP-bound tokens (RFC 9449),
then a lookup, a field query and an eligibility question; with ``--batch``, a payment run
over every demo citizen through the batch routes; or, with ``--official``, the same calls made
by a named official on a case, through token exchange (RFC 8693).

Run it against ``make demo`` (it reads the demo's credentials file, whose agencies are
``cnss`` and ``men``):

    .venv/bin/python examples/agency_client.py --agency cnss --purpose amo_tadamon_enrolment
    .venv/bin/python examples/agency_client.py --agency men --purpose scholarship_outreach
    .venv/bin/python examples/agency_client.py --agency cnss --purpose asd_payment --batch

With ``--official`` the program first plays the agency's own identity provider (the demo
registered its keys for CNSS: ``sijill clients trust-idp``), signs the official in, and
exchanges their ID token, with a case reference, for a token naming them. A purpose that
requires an official (``asd_case_review``) is refused without one (a query ``403`` with reason
``official_required``; a lookup ``404``, as every refused lookup, the record saying why):

    .venv/bin/python examples/agency_client.py --agency cnss --purpose asd_case_review \\
        --official agent-1187 --case ASD-R-2026-0042

CNSS's purpose rests on a law, so the first run finds the person at once. The ministry's rests
on the citizen's consent: its lookup answers 404 until that citizen grants it (portal, or
``POST /v1/me/consents``), exactly as for an unknown person (docs/agency-guide.md).

The third run is a direct social aid payment run: it looks up each demo citizen once (an
agency keeps the pseudonyms it has), then asks the eligibility of all of them in one batch and
reads the answer line by line as it streams (docs/agency-guide.md, "Batches").

An agency integrating for real replaces the credentials file with its own key store; nothing
else changes.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import import_key
from jwt.algorithms import ECAlgorithm


class ShortAssertion(PrivateKeyJWT):  # type: ignore[misc]
    """Authlib signs hour-long client assertions by default; FAPI 2.0 servers want short."""

    alg = "ES256"

    def sign(self, auth: Any, token_endpoint: str) -> str:
        return private_key_jwt_sign(
            auth.client_secret,
            client_id=auth.client_id,
            token_endpoint=token_endpoint,
            alg=self.alg,
            expires_in=60,
        )


class DPoPKey:
    """A fresh key pair for this program run; every request carries a proof signed with it."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.public_jwk = ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)

    def proof(self, method: str, url: str, access_token: str | None = None) -> str:
        claims: dict[str, Any] = {
            "htm": method,
            "htu": url.split("?")[0],
            "iat": int(time.time()),
            "jti": secrets.token_urlsafe(16),
        }
        if access_token is not None:
            digest = hashlib.sha256(access_token.encode()).digest()
            claims["ath"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        return jwt.encode(
            claims, self.key, algorithm="ES256", headers={"typ": "dpop+jwt", "jwk": self.public_jwk}
        )


TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 - a URN
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105 - a URN


def official_id_token(idp: dict[str, Any], official: str, audience: str) -> str:
    """What the agency's identity provider issues when the official signs in: an ID token
    addressed to Sijill's issuer (docs/agency-guide.md). A real agency gets it from its
    provider; the demo's provider is this function and the key the demo registered."""
    now = int(time.time())
    claims = {"iss": idp["issuer"], "sub": official, "aud": audience, "iat": now, "exp": now + 300}
    key = import_key(idp["private_jwk"])
    return jwt.encode(
        claims,
        key.as_pem(private=True),
        algorithm="ES256",
        headers={"kid": idp["private_jwk"]["kid"]},
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--credentials", default=".sijill/demo/credentials.json")
    parser.add_argument("--agency", default=None, help="client_id of a demo agency")
    parser.add_argument(
        "--cnie",
        default=None,
        help="CNIE number of the citizen (default: the first demo citizen's)",
    )
    parser.add_argument("--purpose", default="amo_tadamon_enrolment")
    parser.add_argument("--program", default="amo_tadamon")
    parser.add_argument(
        "--fields", default="given_name_lat,family_name_lat,birth_date,phone,region,household_size"
    )
    parser.add_argument(
        "--batch", action="store_true", help="a payment run over every demo citizen, batched"
    )
    parser.add_argument("--official", default=None, help="the official's login at the agency")
    parser.add_argument("--case", default=None, help="the case reference (never personal data)")
    args = parser.parse_args()

    creds = json.loads(Path(args.credentials).read_text())
    issuer = creds["issuer"]
    agencies = {a["client_id"]: a for a in creds["agencies"]}
    agency = agencies[args.agency] if args.agency else creds["agencies"][0]
    cnie = args.cnie or next(c["cnie"] for c in creds["citizens"] if c.get("cnie"))
    token_url = f"{issuer}/oauth/token"
    dpop = DPoPKey()

    # Authlib's requests integration: its httpx one warns of a move to httpx2.
    program = OAuth2Session(
        client_id=agency["client_id"],
        client_secret=import_key(agency["private_jwk"]),
        token_endpoint_auth_method="private_key_jwt",  # noqa: S106 - a method name
        scope=agency["scopes"] if isinstance(agency["scopes"], str) else " ".join(agency["scopes"]),
    )
    program.register_client_auth_method(ShortAssertion(token_url))
    if args.official:
        # RFC 8693 §2.1: the official's ID token as subject_token, the case as case_reference.
        token = program.fetch_token(
            token_url,
            grant_type=TOKEN_EXCHANGE,
            subject_token=official_id_token(agency["idp"], args.official, issuer),
            subject_token_type=ID_TOKEN,
            case_reference=args.case or "",
            headers={"DPoP": dpop.proof("POST", token_url)},
            timeout=10,
        )
    else:
        token = program.fetch_token(
            token_url,
            grant_type="client_credentials",
            headers={"DPoP": dpop.proof("POST", token_url)},
            timeout=10,
        )
    access = token["access_token"]
    print(
        f"token: {token['token_type']} scope={token['scope']!r} expires_in={token['expires_in']}s"
    )
    if args.official:
        # The official's id at Sijill (act.sub): the agency keeps it with the official's name.
        claims = jwt.decode(access, options={"verify_signature": False})
        print(f"acting official: {claims['act']['sub']} case: {claims['case']}")

    def headers(url: str) -> dict[str, str]:
        return {"Authorization": f"DPoP {access}", "DPoP": dpop.proof("POST", url, access)}

    def call(path: str, body: dict[str, Any]) -> httpx.Response:
        url = f"{issuer}{path}"
        return httpx.post(url, json=body, timeout=10, headers=headers(url))

    if args.batch:
        return payment_run(creds, args, call, headers)

    found = call("/v1/agency/lookup", {"cnie": cnie, "purpose": args.purpose})
    print("lookup", found.status_code, found.json())
    if found.status_code != 200:
        return 1
    pseudonym = found.json()["pseudonym"]
    query = call(
        f"/v1/agency/persons/{pseudonym}/query",
        {"fields": args.fields.split(","), "purpose": args.purpose},
    )
    print("query", query.status_code, json.dumps(query.json(), ensure_ascii=False, indent=2))
    elig = call(
        f"/v1/agency/persons/{pseudonym}/eligibility",
        {"program": args.program, "purpose": args.purpose},
    )
    print("eligibility", elig.status_code, elig.json())
    return 0


# The most items one batch request carries (docs/agency-guide.md).
BATCH = 1000


def payment_run(
    creds: dict[str, Any],
    args: argparse.Namespace,
    call: Callable[[str, dict[str, Any]], httpx.Response],
    headers: Callable[[str], dict[str, str]],
) -> int:
    """Every demo citizen's pseudonym, then their eligibility in batches, read as it streams."""
    pseudonyms = []
    for citizen in creds["citizens"]:
        if citizen.get("cnie"):
            found = call("/v1/agency/lookup", {"cnie": citizen["cnie"], "purpose": args.purpose})
            if found.status_code == 200:
                pseudonyms.append(found.json()["pseudonym"])
    print(f"payment run: {len(pseudonyms)} beneficiaries")
    url = f"{creds['issuer']}/v1/agency/batch/eligibility"
    paid = 0
    for start in range(0, len(pseudonyms), BATCH):
        chunk = pseudonyms[start : start + BATCH]
        body = {
            "program": "asd",
            "purpose": args.purpose,
            "items": [{"pseudonym": p} for p in chunk],
        }
        with httpx.stream("POST", url, json=body, timeout=60, headers=headers(url)) as answer:
            if answer.status_code != 200:
                # A problem document: the whole batch was refused, nothing was decided.
                print("batch refused", answer.status_code, answer.read().decode())
                return 1
            for line in answer.iter_lines():
                outcome = json.loads(line)
                who = chunk[outcome["item"]]
                result = outcome["body"]
                if outcome["status"] == 200 and result["eligible"]:
                    paid += 1
                    print("pay", who, "decision", result["decision_id"])
                elif outcome["status"] == 200:
                    print("not eligible", who, "decision", result["decision_id"])
                else:
                    print("review", who, outcome["status"], result.get("reasons", result["type"]))
    print(f"payment run: {paid} of {len(pseudonyms)} to pay")
    return 0


if __name__ == "__main__":
    sys.exit(main())
