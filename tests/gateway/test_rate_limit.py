"""Per-agency rate limits answer 429 problem+json with Retry-After."""

from __future__ import annotations

from gateway.ratelimit import ProcessRateLimiter
from tests.gateway.conftest import World


def test_bucket_refills_at_the_configured_rate() -> None:
    limiter = ProcessRateLimiter(rate_per_s=2.0, burst=2)
    assert limiter.take("cnss", now=0.0) == 0.0
    assert limiter.take("cnss", now=0.0) == 0.0
    assert limiter.take("cnss", now=0.0) == 0.5  # one token in half a second
    assert limiter.take("anam", now=0.0) == 0.0  # buckets are per client
    assert limiter.take("cnss", now=0.5) == 0.0


def test_an_agency_over_its_rate_gets_429_with_retry_after(world: World) -> None:
    limiter = world.services.rate_limiter
    limiter.rate, limiter.burst = 0.01, 2
    token = world.token("cnss")
    headers = {"Authorization": f"Bearer {token}"}
    body = {"cnie": "AB123456", "purpose": "amo_tadamon_enrolment"}
    statuses = [
        world.api.post("/v1/agency/lookup", json=body, headers=headers).status_code
        for _ in range(3)
    ]
    assert statuses[:2] == [200, 200]
    assert statuses[2] == 429
    limited = world.api.post("/v1/agency/lookup", json=body, headers=headers)
    assert limited.headers["content-type"] == "application/problem+json"
    assert int(limited.headers["retry-after"]) >= 1
    # Another agency is not affected.
    other = world.call("anam", "POST", "/v1/agency/lookup", json=body)
    assert other.status_code == 200
