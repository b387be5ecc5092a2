"""One time representation in the public API (docs/api-times.md): RFC 3339 UTC strings; an
integer count of nanoseconds only where a verifier needs it, and then named ``…_ns``."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.gateway.conftest import World
from tests.gateway.test_agency_api import pseudonym, query


def _rfc3339(value: Any) -> datetime:
    assert isinstance(value, str) and value.endswith("Z"), value
    return datetime.fromisoformat(value)


def _keys(document: Any) -> set[str]:
    if isinstance(document, dict):
        return set(document) | {k for v in document.values() for k in _keys(v)}
    if isinstance(document, list):
        return {k for v in document for k in _keys(v)}
    return set()


def test_access_log_consents_and_objections_speak_rfc_3339(world: World) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    p = pseudonym(world, "cnss", "AB123456", "amo_tadamon_enrolment")
    query(world, "cnss", p, ["region"], "amo_tadamon_enrolment")
    headers = {"Authorization": f"Bearer {world.citizen_token('fatima')}"}
    log = world.api.get("/v1/me/access-log", headers=headers).json()
    assert all(before <= _rfc3339(e["time"]) <= datetime.now(UTC) for e in log["entries"])

    expiry = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    granted = world.api.post(
        "/v1/me/consents",
        json={
            "recipient": "men",
            "purpose": "scholarship_outreach",
            "fields": ["region"],
            "expires_at": expiry.isoformat().replace("+00:00", "Z"),
        },
        headers=headers,
    )
    assert granted.status_code == 201, granted.text
    consent = granted.json()
    assert _rfc3339(consent["expires_at"]) == expiry
    assert before <= _rfc3339(consent["granted_at"])
    objection = world.api.post(
        "/v1/me/objections", json={"sector": "health", "reason": "other"}, headers=headers
    ).json()
    assert before <= _rfc3339(objection["created_at"])
    data = world.api.get("/v1/me/data", headers=headers)
    assert data.status_code == 200, data.text
    assert not any(k.endswith("_ns") for k in _keys([log, consent, objection, data.json()]))


def test_an_expiry_without_an_offset_is_refused(world: World) -> None:
    headers = {"Authorization": f"Bearer {world.citizen_token('fatima')}"}
    naive = datetime.fromtimestamp(time.time() + 86400).replace(tzinfo=None).isoformat()
    refused = world.api.post(
        "/v1/me/consents",
        json={"recipient": "men", "purpose": "scholarship_outreach", "fields": ["region"],
              "expires_at": naive},
        headers=headers,
    )  # fmt: skip
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"


def test_auditors_get_rfc_3339_times_and_the_integer_a_verifier_needs(world: World) -> None:
    p = pseudonym(world, "cnss", "AB123456", "amo_tadamon_enrolment")
    query(world, "cnss", p, ["region"], "amo_tadamon_enrolment")
    page = world.call("cndp", "GET", "/v1/audit/entries", params={"agency": "cnss"}).json()
    assert page["entries"]
    for entry in page["entries"]:
        ns = entry["time_ns"]
        assert isinstance(ns, int)
        exact = datetime.fromtimestamp(ns // 10**9, tz=UTC).replace(microsecond=ns % 10**9 // 1000)
        assert _rfc3339(entry["time"]) == exact
