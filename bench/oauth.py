"""Authorization server throughput: client-credentials tokens issued and protected requests
served per second, in process through the ASGI app (no network), on SQLite.

Baselines measured in the same run: a bare pyjwt ES256 sign+verify (the crypto floor of one
token) and ``GET /healthz`` through the same app (the framework floor of one request).

    .venv/bin/python bench/oauth.py [--tokens 300] [--requests 600]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi import Depends
from fastapi.testclient import TestClient

from gateway import db
from gateway.app import create_app
from gateway.auth import Principal, require_principal
from gateway.settings import load_settings
from identity.oauth import make_proof

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def rate(n: int, seconds: float) -> float:
    return round(n / seconds, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=300)
    parser.add_argument("--requests", type=int, default=600)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            data_dir=Path(tmp) / "data",
            host="127.0.0.1",
            port=8000,
            database_url=f"sqlite:///{tmp}/bench.db",
        )
        settings.prepare_data_dir()
        db.upgrade(settings.database_urls)
        app = create_app(settings)

        @app.get("/bench/protected")
        def protected(
            p: Principal = Depends(require_principal(scopes=["agency:lookup"])),
        ) -> dict[str, str]:
            return {"client": p.client_id}

        with TestClient(app, base_url=settings.issuer) as api:
            oauth = app.state.services.oauth
            key = ec.generate_private_key(ec.SECP256R1())
            public = {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "k1"}
            client = oauth.registry.add(
                name="bench",
                kind="agency",
                sector="social",
                jwks={"keys": [public]},
                scopes="agency:lookup",
            )

            def assertion() -> str:
                now = int(time.time())
                return jwt.encode(
                    {
                        "iss": client.client_id,
                        "sub": client.client_id,
                        "aud": settings.issuer,
                        "jti": secrets.token_urlsafe(16),
                        "iat": now,
                        "exp": now + 60,
                    },
                    key,
                    algorithm="ES256",
                    headers={"kid": "k1"},
                )

            def fetch(dpop: str | None = None) -> str:
                response = api.post(
                    "/oauth/token",
                    data={
                        "grant_type": "client_credentials",
                        "client_assertion": assertion(),
                        "client_assertion_type": ASSERTION_TYPE,
                    },
                    headers={"DPoP": dpop} if dpop else {},
                )
                assert response.status_code == 200, response.text
                return str(response.json()["access_token"])

            # Baseline 1: the crypto floor, one ES256 sign + verify.
            started = time.perf_counter()
            for _ in range(args.tokens):
                token = jwt.encode({"sub": "x"}, key, algorithm="ES256")
                jwt.decode(token, key.public_key(), algorithms=["ES256"])
            crypto = rate(args.tokens, time.perf_counter() - started)

            started = time.perf_counter()
            for _ in range(args.tokens):
                fetch()
            tokens = rate(args.tokens, time.perf_counter() - started)

            # Baseline 2: the framework floor.
            started = time.perf_counter()
            for _ in range(args.requests):
                api.get("/healthz")
            floor = rate(args.requests, time.perf_counter() - started)

            bearer = fetch()
            started = time.perf_counter()
            for _ in range(args.requests):
                assert (
                    api.get(
                        "/bench/protected", headers={"Authorization": f"Bearer {bearer}"}
                    ).status_code
                    == 200
                )
            bearer_rate = rate(args.requests, time.perf_counter() - started)

            holder = ec.generate_private_key(ec.SECP256R1())
            jwk = ECAlgorithm.to_jwk(holder.public_key(), as_dict=True)
            bound = fetch(
                make_proof(holder, jwk, method="POST", url=f"{settings.issuer}/oauth/token")
            )
            url = f"{settings.issuer}/bench/protected"
            started = time.perf_counter()
            for _ in range(args.requests):
                proof = make_proof(holder, jwk, method="GET", url=url, access_token=bound)
                assert (
                    api.get(
                        "/bench/protected",
                        headers={"Authorization": f"DPoP {bound}", "DPoP": proof},
                    ).status_code
                    == 200
                )
            dpop_rate = rate(args.requests, time.perf_counter() - started)
        app.state.services.close()

    print(
        json.dumps(
            {
                "store": "sqlite",
                "es256_sign_verify_per_s": crypto,
                "tokens_per_s": tokens,
                "tokens_vs_crypto_floor": round(tokens / crypto, 3),
                "healthz_per_s": floor,
                "bearer_requests_per_s": bearer_rate,
                "bearer_vs_healthz": round(bearer_rate / floor, 3),
                "dpop_requests_per_s_incl_client_proof": dpop_rate,
                "dpop_vs_healthz": round(dpop_rate / floor, 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
