"""Two gateway hosts on one PostgreSQL behind a round-robin proxy behave as one gateway.

Each host is its own ``sijill serve`` process with its own data directory; they share the
database and the key material (host A's ``keys/`` copied into host B's data directory, as a
key file given to both hosts would be). Through the proxy and at each host directly:

- one audit log, which ``sijill audit verify`` finds consistent from either data directory;
- one rate limit per agency: the hosts together allow at most ``burst + rate × elapsed``
  requests, within a tolerance of one token (``elapsed`` runs from the first request sent to
  the last answer received, so no admitted request falls outside it);
- a client assertion and a DPoP proof accepted by one host are refused as replays by the other;
- a consent revoked on one host is honoured by the other at the very next request.
"""

from __future__ import annotations

import itertools
import json
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from prometheus_client.parser import text_string_to_metric_families

from identity.oauth import make_proof
from tests.gateway.conftest import FATIMA, YOUSSEF, World
from tests.gateway.live import LiveGateway
from tests.gateway.tcpproxy import TcpProxy

pytestmark = pytest.mark.postgres

RATE = 2.0  # per second, per agency, for the whole deployment
BURST = 2
LOAD_S = 4.0
LOAD_THREADS = 8
AGENCY_SCOPES = "agency:lookup agency:query agency:eligibility"
LOOKUP = "/v1/agency/lookup"


class RoundRobinProxy(TcpProxy):
    """The load balancer: each new connection goes to the next host in turn."""

    def __init__(self) -> None:
        self.hosts: list[tuple[str, int]] = []
        self.connections: Counter[int] = Counter()  # port -> connections sent there
        self._turn = itertools.count()
        super().__init__(("127.0.0.1", 0))

    @property  # type: ignore[override]
    def upstream(self) -> tuple[str, int]:
        host = self.hosts[next(self._turn) % len(self.hosts)]
        self.connections[host[1]] += 1
        return host

    @upstream.setter
    def upstream(self, value: tuple[str, int]) -> None:
        pass  # the hosts are set in ``hosts``


def seed(data_dir: Path, database_url: str, issuer: str) -> World:
    """Host A's data directory and the shared database: the schema, every key, two enrolled
    persons and the clients, written by a gateway's services as `sijill` commands would."""
    from gateway.db import upgrade
    from gateway.services import build_services
    from gateway.settings import load_settings
    from identity import PersonIn
    from identity.oauth import build_oauth_service

    settings = load_settings(data_dir=data_dir, database_url=database_url, issuer=issuer)
    settings.prepare_data_dir()
    upgrade(settings.database_urls)
    services = build_services(settings)
    try:
        oauth = build_oauth_service(services.engines["main"], data_dir / "keys", issuer)
        # No keep-alive: every request is a new connection, so the proxy alternates hosts.
        api = httpx.Client(
            base_url=issuer, timeout=30, limits=httpx.Limits(max_keepalive_connections=0)
        )
        world = World(api=api, oauth=oauth, services=None, issuer=issuer)  # type: ignore[arg-type]
        world.people["fatima"] = str(services.register.enrol(PersonIn(**FATIMA)))
        world.people["youssef"] = str(services.register.enrol(PersonIn(**YOUSSEF)))
        world.register("cnss", "agency", "social", AGENCY_SCOPES, "amo_tadamon_enrolment")
        world.register("anam", "agency", "social", AGENCY_SCOPES, "amo_tadamon_enrolment")
        world.register("men", "agency", "education", AGENCY_SCOPES, "scholarship_outreach")
        # The citizens' portal, to which citizen tokens are issued.
        oauth.registry.add(
            name="portal",
            kind="portal",
            sector="citizens",
            jwks={"keys": [{**make_key()[1], "kid": "p1"}]},
            scopes="openid citizen:self",
            client_id="portal",
            redirect_uris=[f"{issuer}/portal/callback"],
        )
        world.citizen_token("fatima")  # the authorization server's signing key exists now
    finally:
        services.close()
    return world


def share_keys(source: Path, target: Path) -> None:
    target.mkdir(mode=0o700, parents=True)
    shutil.copytree(source / "keys", target / "keys")  # copy2 keeps the 0600 modes


def assertion(world: World, client_id: str) -> dict[str, str]:
    client = world.clients[client_id]
    now = int(time.time())
    signed = jwt.encode(
        {
            "iss": client_id,
            "sub": client_id,
            "aud": f"{world.issuer}/oauth/token",
            "jti": secrets.token_urlsafe(16),
            "iat": now,
            "exp": now + 60,
        },
        client.key,
        algorithm="ES256",
        headers={"kid": client.kid},
    )
    return {
        "grant_type": "client_credentials",
        "client_assertion": signed,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    }


def refused_count(host: LiveGateway) -> float:
    text = httpx.get(f"{host.url}/metrics", timeout=30).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "sijill_rate_limited_requests_total"
    )


def drive_load(world: World, token: str) -> tuple[Counter[int], float, list[httpx.Response]]:
    """LOAD_THREADS clients calling the lookup through the proxy for LOAD_S seconds."""
    statuses: Counter[int] = Counter()
    limited: list[httpx.Response] = []
    lock = threading.Lock()
    body = {"cnie": "AB123456", "purpose": "amo_tadamon_enrolment"}
    headers = {"Authorization": f"Bearer {token}"}
    started = time.monotonic()
    deadline = started + LOAD_S

    def client() -> None:
        with httpx.Client(
            base_url=world.issuer, timeout=30, limits=httpx.Limits(max_keepalive_connections=0)
        ) as http:
            while time.monotonic() < deadline:
                response = http.post(LOOKUP, json=body, headers=headers)
                with lock:
                    statuses[response.status_code] += 1
                    if response.status_code == 429 and len(limited) < 3:
                        limited.append(response)

    threads = [threading.Thread(target=client) for _ in range(LOAD_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses, time.monotonic() - started, limited


def verify_audit(data_dir: Path, database_url: str) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from gateway.cli import main; main()",
            "audit",
            "verify",
            "--json",
            "--data-dir",
            str(data_dir),
            "--database-url",
            database_url,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-800:] + done.stderr[-800:]
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_two_hosts_behind_a_round_robin_proxy_share_one_state(
    pg_schema_url: str, tmp_path: Path
) -> None:
    proxy = RoundRobinProxy().start()
    issuer = f"http://127.0.0.1:{proxy.port}"
    dir_a, dir_b = tmp_path / "host-a", tmp_path / "host-b"
    world = seed(dir_a, pg_schema_url, issuer)
    share_keys(dir_a, dir_b)
    common = {
        "database_url": pg_schema_url,
        "issuer": issuer,
        "agency_rate_per_s": str(RATE),
        "agency_burst": str(BURST),
    }
    hosts: list[LiveGateway] = []
    try:
        hosts.append(LiveGateway(dir_a, **common))
        hosts.append(LiveGateway(dir_b, **common))
        a, b = hosts
        proxy.hosts = [("127.0.0.1", a.port), ("127.0.0.1", b.port)]
        at_a = httpx.Client(base_url=a.url, timeout=30)
        at_b = httpx.Client(base_url=b.url, timeout=30)

        # A client assertion accepted by host A is a replay at host B.
        grant = assertion(world, "cnss")
        assert at_a.post("/oauth/token", data=grant).status_code == 200
        replayed = at_b.post("/oauth/token", data=grant)
        assert replayed.status_code in (400, 401), replayed.text
        assert replayed.json()["error"] == "invalid_client"

        # A DPoP proof accepted by host A is a replay at host B.
        holder = make_key()
        bound = at_a.post(
            "/oauth/token",
            data=assertion(world, "anam"),
            headers={
                "DPoP": make_proof(*holder, method="POST", url=f"{issuer}/oauth/token"),
            },
        )
        assert bound.status_code == 200, bound.text
        token = bound.json()["access_token"]
        proof = make_proof(*holder, method="POST", url=f"{issuer}{LOOKUP}", access_token=token)
        dpop = {"Authorization": f"DPoP {token}", "DPoP": proof}
        body = {"cnie": "AB123456", "purpose": "amo_tadamon_enrolment"}
        assert at_a.post(LOOKUP, json=body, headers=dpop).status_code == 200
        proof_replayed = at_b.post(LOOKUP, json=body, headers=dpop)
        assert proof_replayed.status_code == 401, proof_replayed.text
        assert proof_replayed.json()["type"].endswith("/invalid-dpop-proof")

        # A consent revoked at host A is honoured by host B at the next request.
        citizen = {"Authorization": f"Bearer {world.citizen_token('fatima')}"}
        consent = at_a.post(
            "/v1/me/consents",
            json={
                "recipient": "men",
                "purpose": "scholarship_outreach",
                "fields": ["given_name_lat", "region"],
                "expires_at": datetime.fromtimestamp(time.time() + 86400, tz=UTC).isoformat(),
            },
            headers=citizen,
        )
        assert consent.status_code == 201, consent.text
        men = {"Authorization": f"Bearer {world.token('men')}"}
        outreach = {"cnie": "AB123456", "purpose": "scholarship_outreach"}
        assert at_b.post(LOOKUP, json=outreach, headers=men).status_code == 200
        revoked = at_a.delete(f"/v1/me/consents/{consent.json()['id']}", headers=citizen)
        assert revoked.status_code in (200, 204), revoked.text
        assert at_b.post(LOOKUP, json=outreach, headers=men).status_code == 404

        # One rate limit for the agency across both hosts.
        refused_before = refused_count(a) + refused_count(b)
        connections_before = dict(proxy.connections)
        statuses, elapsed, limited = drive_load(world, world.token("cnss"))
        allowed, refused = statuses[200], statuses[429]
        assert set(statuses) <= {200, 429}, statuses
        bound_allowed = BURST + RATE * elapsed
        # The load was well over what the hosts would allow each on its own bucket ...
        assert allowed + refused >= 3 * bound_allowed, statuses
        for port in (a.port, b.port):  # ... and both hosts served it
            assert proxy.connections[port] - connections_before.get(port, 0) >= LOAD_THREADS
        assert allowed <= bound_allowed + 1, (statuses, elapsed)
        assert allowed >= 0.5 * bound_allowed, (statuses, elapsed)
        problem = limited[0]
        assert problem.headers["content-type"] == "application/problem+json"
        assert int(problem.headers["retry-after"]) >= 1
        assert refused_count(a) + refused_count(b) - refused_before == refused
    finally:
        for host in hosts:
            host.stop()  # a clean stop signs the tail under the checkpoint lease
        proxy.stop()

    # One audit log, consistent, whichever host's data directory (signer memory) verifies it.
    for data_dir in (dir_a, dir_b):
        report = verify_audit(data_dir, pg_schema_url)
        assert report["ok"], report
        assert report["tree_size"] > 0
        assert report["checkpoints_verified"] >= 1


def make_key() -> tuple[Any, dict[str, Any]]:
    from cryptography.hazmat.primitives.asymmetric import ec
    from jwt.algorithms import ECAlgorithm

    key = ec.generate_private_key(ec.SECP256R1())
    return key, ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
