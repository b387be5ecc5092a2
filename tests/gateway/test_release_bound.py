"""Release = decision ∩ request ∩ registry, whatever the policy engine answers (issue 21).

A deliberately permissive stub OPA (the one stand-in these tests allow) speaks OPA's Data API
on loopback or on a Unix socket (the two sidecar transports) and releases every field of the
catalogue for any request; the gateway must still
release only what was asked for and what the agency declared for the purpose, on SQLite and
PostgreSQL, and say so in its log and metrics.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socketserver
import tempfile
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from audit import EntryFilter
from gateway.settings import SettingsError, load_settings
from policies import OpaEngine
from policies.registry import field_catalogue
from tests.gateway.conftest import FATIMA, World

EVERY_FIELD = sorted(field_catalogue())


class _AllowEverything(BaseHTTPRequestHandler):
    """OPA's ``POST /v1/data/<path>``, answering allow with every field for any input."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps(
            {
                "decision_id": str(uuid.uuid4()),
                "result": {
                    "allow": True,
                    "fields": EVERY_FIELD,
                    "obligations": {},
                    "reasons": [],
                    "legal_basis": {"type": "law", "ref": "spoofed"},
                    "withheld": {},
                },
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _UnixHTTPServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


@pytest.fixture(params=["loopback", "unix_socket"])
def permissive_opa(request: pytest.FixtureRequest) -> Iterator[str]:
    """The stub's URL: a loopback port, or a socket file (both sidecar transports)."""
    server: socketserver.BaseServer
    if request.param == "loopback":
        server = ThreadingHTTPServer(("127.0.0.1", 0), _AllowEverything)
        url = f"http://127.0.0.1:{server.server_address[1]}"
    else:
        # A short path: a socket path is limited to ~100 bytes, and tmp_path can exceed it.
        folder = tempfile.mkdtemp(prefix="opa-")
        path = os.path.join(folder, "opa.sock")
        server = _UnixHTTPServer(path, _AllowEverything)
        url = f"unix://{path}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()
        if request.param == "unix_socket":
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def spoofed(world: World, permissive_opa: str) -> Iterator[World]:
    assert load_settings(policy_engine=permissive_opa).policy_engine == permissive_opa
    engine = OpaEngine(permissive_opa, timeout=2.0)
    world.services.policy = engine
    try:
        yield world
    finally:
        engine.close()


def _query(world: World, fields: list[str], purpose: str = "amo_tadamon_enrolment") -> dict:  # type: ignore[type-arg]
    headers = {"Authorization": f"Bearer {world.token('cnss')}"}
    found = world.api.post(
        "/v1/agency/lookup", headers=headers, json={"cnie": FATIMA["cnie"], "purpose": purpose}
    )
    assert found.status_code == 200, found.text
    response = world.api.post(
        f"/v1/agency/persons/{found.json()['pseudonym']}/query",
        headers=headers,
        json={"fields": fields, "purpose": purpose},
    )
    assert response.status_code == 200, response.text
    assert FATIMA["cnie"] not in response.text
    return dict(response.json())


def test_permissive_engine_releases_only_the_requested_field(spoofed: World) -> None:
    body = _query(spoofed, ["region"])
    assert body["released"] == {"region": FATIMA["region"]}


def test_permissive_engine_releases_nothing_the_registry_does_not_declare(spoofed: World) -> None:
    # The AMO Tadamon declaration lists neither the CNIE nor the phone nor the address.
    body = _query(spoofed, ["region", "cnie", "phone", "address"])
    assert body["released"] == {"region": FATIMA["region"]}
    assert sorted(w["field"] for w in body["withheld"]) == ["address", "cnie", "phone"]


def test_the_audit_entry_records_only_the_bounded_release(spoofed: World) -> None:
    before = spoofed.audit_size()
    _query(spoofed, ["region", "cnie"])
    [entry] = spoofed.services.audit.entries(
        EntryFilter(action="read_attributes"), after=before - 1
    )
    assert entry.entry.fields == ["region"]


def test_a_dropped_release_is_logged_as_an_anomaly_without_personal_data(
    spoofed: World, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="sijill.authz"):
        _query(spoofed, ["region"])
    anomalies = [r for r in caplog.records if hasattr(r, "anomaly")]
    assert anomalies
    record = anomalies[-1].anomaly
    assert record["kind"] == "release_beyond_bound"
    assert record["action"] == "read_attributes"
    assert "cnie" in record["dropped"] and "region" not in record["dropped"]
    text = caplog.text + json.dumps([getattr(r, "anomaly", None) for r in caplog.records])
    for value in FATIMA.values():
        assert value not in text
    assert spoofed.people["fatima"] not in text


def test_a_dropped_release_is_counted_in_the_metrics(spoofed: World) -> None:
    _query(spoofed, ["region"])
    metrics = spoofed.api.get("/metrics").text
    line = next(
        ln
        for ln in metrics.splitlines()
        if ln.startswith('sijill_policy_anomalies_total{action="read_attributes"}')
    )
    assert float(line.split()[-1]) >= 1


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8181",
        "http://127.8.9.10:8181",
        "http://[::1]:8181",
        "http://localhost:8181",
        "https://opa.internal.example:8181",
        "unix:///run/opa/opa.sock",
    ],
)
def test_a_sidecar_or_an_https_engine_is_accepted(url: str) -> None:
    assert load_settings(policy_engine=url).policy_engine == url


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5:8181",
        "http://opa.internal.example:8181",
        "ftp://127.0.0.1",
        "unix://relative/opa.sock",
    ],
)
def test_a_plain_remote_engine_url_is_refused_at_start(url: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(policy_engine=url)
    message = str(info.value)
    assert "SIJILL_POLICY_ENGINE" in message and "\n" not in message


def test_a_dropped_release_lands_in_the_audit_log_as_a_security_event(spoofed: World) -> None:
    _query(spoofed, ["region"])
    spoofed.services.security_events.flush(final=True)
    events = spoofed.services.audit.entries(EntryFilter(action="security.policy_anomaly"))
    assert events  # the lookup's and the query's
    for event in events:
        assert event.entry.reasons == ["release_beyond_bound"]
        assert event.entry.actor["id"] == "cnss"
        assert event.entry.subject is None
