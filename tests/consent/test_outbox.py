"""Consent notifications reach the agency's endpoint, with retries and backoff."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from consent import ConsentService, Outbox
from consent.outbox import MAX_ATTEMPTS, backoff_s

S = 1_000_000_000
NOW = 1_800_000_000 * S


class Receiver:
    """A local agency endpoint that fails its first ``failures`` calls."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.bodies: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                if receiver.failures > 0:
                    receiver.failures -= 1
                    self.send_response(503)
                else:
                    receiver.bodies.append(body)
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(failures=2)
    yield r
    r.server.shutdown()


def send(url: str, body: str) -> int:
    return httpx.post(
        url, content=body, headers={"Content-Type": "application/jwt"}, timeout=5
    ).status_code


def test_notification_is_retried_with_backoff_until_delivered(
    service: ConsentService, engine, receiver: Receiver
) -> None:  # type: ignore[no-untyped-def]
    consent = service.grant(
        subject="2345678901",
        principal_id="health.v1.x",
        recipient="ms_sante",
        purpose="maternal_health_followup",
        fields=["phone"],
        expires_at_ns=NOW + 86_400 * S,
        method="portal",
        now_ns=NOW,
    )
    outbox = Outbox(engine)
    outbox.set_endpoint("ms_sante", receiver.url)
    endpoints = {"ms_sante": receiver.url}
    assert outbox.endpoints() == endpoints
    first = outbox.deliver_due(send, outbox.endpoint_for, now_ns=NOW)
    assert [d.status for d in first] == [503]
    # Not due again until its backoff has passed.
    assert outbox.deliver_due(send, endpoints.get, now_ns=NOW + S // 10) == []
    second = outbox.deliver_due(send, endpoints.get, now_ns=NOW + 2 * S)
    assert [d.status for d in second] == [503]
    third = outbox.deliver_due(send, endpoints.get, now_ns=NOW + 10 * S)
    assert [(d.status, d.delivered) for d in third] == [(204, True)]
    assert len(receiver.bodies) == 1 and consent.id not in receiver.bodies[0]  # a JWS, not JSON
    assert outbox.pending() == 0
    assert outbox.deliver_due(send, endpoints.get, now_ns=NOW + 3600 * S) == []


def test_unreachable_endpoint_is_retried_not_lost(service: ConsentService, engine) -> None:  # type: ignore[no-untyped-def]
    service.grant(
        subject="2345678901",
        principal_id="p",
        recipient="ms_sante",
        purpose="maternal_health_followup",
        fields=["phone"],
        expires_at_ns=NOW + 86_400 * S,
        method="portal",
        now_ns=NOW,
    )
    outbox = Outbox(engine)
    [delivery] = outbox.deliver_due(send, lambda _r: "http://127.0.0.1:1/closed", now_ns=NOW)
    assert delivery.status is None and not delivery.delivered
    assert outbox.pending() == 1


def test_backoff_grows_and_is_capped() -> None:
    import random

    rng = random.Random(7)
    delays = [backoff_s(n, rng) for n in range(1, MAX_ATTEMPTS + 1)]
    assert delays[0] <= 1.0 and delays[4] >= 8.0
    assert max(delays) <= 3600.0


def test_endpoints_must_be_https_outside_loopback(engine) -> None:  # type: ignore[no-untyped-def]
    outbox = Outbox(engine)
    with pytest.raises(ValueError):
        outbox.set_endpoint("cnss", "http://agency.example/notify")
    outbox.set_endpoint("cnss", "https://agency.example/notify")
    outbox.set_endpoint("cnss", "https://agency.example/v2/notify")
    assert outbox.endpoints() == {"cnss": "https://agency.example/v2/notify"}
