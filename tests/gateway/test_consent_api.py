"""Consents and objections through the citizen's routes, as the policies then apply them."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.gateway.conftest import World

S = 1_000_000_000
PURPOSE = "scholarship_outreach"


def as_citizen(world: World, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.citizen_token(name)}"}


def grant(world: World, **overrides: Any) -> Any:
    body = {
        "recipient": "men",
        "purpose": PURPOSE,
        "fields": ["given_name_lat", "region"],
        "expires_at": datetime.fromtimestamp(int(time.time()) + 86400, tz=UTC).isoformat(),
    }
    body.update(overrides)
    return world.api.post("/v1/me/consents", json=body, headers=as_citizen(world, "fatima"))


def agency_query(world: World, agency: str, purpose: str) -> Any:
    found = world.call(
        agency, "POST", "/v1/agency/lookup", json={"cnie": "AB123456", "purpose": purpose}
    )
    assert found.status_code == 200, found.text
    p = found.json()["pseudonym"]
    return world.call(
        agency,
        "POST",
        f"/v1/agency/persons/{p}/query",
        json={"fields": ["given_name_lat", "region"], "purpose": purpose},
    )


def test_objection_blocks_consent_processing_and_statutory_processing_goes_on(world: World) -> None:
    assert grant(world).status_code == 201
    assert agency_query(world, "men", PURPOSE).status_code == 200
    objected = world.api.post(
        "/v1/me/objections",
        json={"purpose": "*", "reason": "personal_situation"},
        headers=as_citizen(world, "fatima"),
    )
    assert objected.status_code == 201, objected.text
    effects = {e["purpose"]: e for e in objected.json()["effects"]}
    assert effects[PURPOSE]["effect"] == "stopped"
    assert effects["amo_tadamon_enrolment"]["effect"] == "continues"
    assert "65.00" in effects["amo_tadamon_enrolment"]["law"]  # the citizen is told which law

    # The consent-based lookup is now refused like an unknown person; the statutory one goes on.
    refused = world.call(
        "men", "POST", "/v1/agency/lookup", json={"cnie": "AB123456", "purpose": PURPOSE}
    )
    assert refused.status_code == 404
    statutory = agency_query(world, "cnss", "amo_tadamon_enrolment")
    assert statutory.status_code == 200


def test_consent_routes_list_and_show_the_chain(world: World) -> None:
    consent = grant(world).json()
    headers = as_citizen(world, "fatima")
    world.api.delete(f"/v1/me/consents/{consent['id']}", headers=headers)
    listed = world.api.get("/v1/me/consents", headers=headers).json()["consents"]
    assert {c["status"] for c in listed} == {"SUPERSEDED", "REVOKED"}
    record = world.api.get(f"/v1/me/consents/{consent['id']}/iso27560", headers=headers)
    assert record.status_code == 200
    assert [e["state"] for e in record.json()["events"]] == ["active", "revoked"]
    # Youssef sees none of it and cannot revoke it.
    other = as_citizen(world, "youssef")
    assert world.api.get("/v1/me/consents", headers=other).json()["consents"] == []
    assert world.api.delete(f"/v1/me/consents/{consent['id']}", headers=other).status_code == 404


def test_consent_receipt_verifies_against_the_published_jwks(world: World) -> None:
    from joserfc import jws
    from joserfc.jwk import KeySet

    receipt = grant(world).json()["receipt"]
    keys = KeySet.import_key_set(world.api.get("/oauth/jwks").json())
    token = jws.deserialize_compact(receipt, keys, algorithms=["ES256"])
    assert world.people["fatima"] not in token.payload.decode()


@pytest.mark.parametrize(
    ("overrides", "kind"),
    [
        ({"purpose": "no_such_purpose"}, "consent-unknown-purpose"),
        ({"recipient": "nobody"}, "consent-unknown-recipient"),
        ({"fields": ["cnie"]}, "consent-fields-outside-registry"),
        ({"expires_at": "1970-01-12T13:46:40Z"}, "consent-expiry-in-past"),
        (
            {
                "expires_at": datetime.fromtimestamp(
                    int(time.time()) + 400 * 86400, tz=UTC
                ).isoformat()
            },
            "consent-expiry-beyond-maximum",
        ),
    ],
)
def test_invalid_consent_is_422_and_stores_nothing(
    world: World, overrides: dict[str, Any], kind: str
) -> None:
    from sqlalchemy import func, select

    from identity.tables import pseudonym_keys as keys
    from identity.tables import pseudonyms

    def pseudonym_rows() -> tuple[int, int]:
        with world.services.engines["main"].connect() as conn:
            return tuple(  # type: ignore[return-value]
                conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (keys, pseudonyms)
            )

    before = pseudonym_rows()
    response = grant(world, **overrides)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith(kind)
    assert world.services.consents.of_subject(world.people["fatima"]) == []
    # Nothing was done on the refused request's behalf: no sector key, no pseudonym indexed.
    assert pseudonym_rows() == before


def test_consent_expiring_at_t_allows_at_t_minus_one_second_and_denies_at_t(world: World) -> None:
    """The policy sees the consent's expiry and the request time, nothing cached."""
    expiry = int(time.time()) + 3600
    consent = grant(world, expires_at=datetime.fromtimestamp(expiry, tz=UTC).isoformat()).json()
    idcs = world.people["fatima"]
    consents = world.services.consents.for_policy(idcs)
    assert [c["id"] for c in consents] == [consent["id"]]

    def decide(at_ns: int) -> bool:
        return world.services.policy.decide(
            {
                "subject": {
                    "kind": "agency",
                    "client_id": "men",
                    "agency": "men",
                    "sector": "education",
                    "scopes": ["agency:query"],
                },
                "action": "read_attributes",
                "resource": {"kind": "person", "fields": ["given_name_lat"]},
                "purpose": PURPOSE,
                "consents": consents,
                "objections": [],
                "time_ns": at_ns,
            }
        ).allow

    assert decide(expiry * S - S) is True
    assert decide(expiry * S) is False


def test_the_consent_store_never_links_an_idcs_to_a_purpose(world: World) -> None:
    from sqlalchemy import select

    from consent import tables

    assert grant(world).status_code == 201
    world.api.post(
        "/v1/me/objections",
        json={"sector": "health", "reason": "other"},
        headers=as_citizen(world, "fatima"),
    )
    idcs = world.people["fatima"]
    with world.services.engines["main"].connect() as conn:
        rows = [*conn.execute(select(tables.consents)), *conn.execute(select(tables.objections))]
    assert rows
    assert all(idcs not in str(value) for row in rows for value in row)
    # The rows are filed under the same keyed hash as the person's audit entries.
    assert {row.subject for row in rows} == {world.services.vault.subject_tag(idcs)}
