"""The PDP's OPA Data API surface, in process."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from policies import EmbeddedEngine
from policies.pdp import MAX_INPUT_BYTES, create_pdp_app


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_pdp_app(EmbeddedEngine()))


def test_health_is_ok(client: TestClient) -> None:
    assert client.get("/health").status_code == 200


def test_decision_path_answers_result_and_decision_id(client: TestClient) -> None:
    body = client.post("/v1/data/sijill/authz/decision", json={"input": {}}).json()
    assert body["result"]["allow"] is False
    assert body["decision_id"]


def test_undefined_path_has_no_result_like_opa(client: TestClient) -> None:
    body = client.post("/v1/data/sijill/nothing", json={"input": {}}).json()
    assert "result" not in body and body["decision_id"]


def test_provenance_names_the_revision(client: TestClient) -> None:
    body = client.post("/v1/data/sijill/authz/decision?provenance=true", json={"input": {}}).json()
    assert len(body["provenance"]["bundles"]["sijill"]["revision"]) == 64


def test_bad_bodies_are_refused_without_echo(client: TestClient) -> None:
    response = client.post("/v1/data/sijill/authz/decision", content=b"{not json CANARY")
    assert response.status_code == 400 and "CANARY" not in response.text
    big = b'{"input": "' + b"x" * MAX_INPUT_BYTES + b'"}'
    assert client.post("/v1/data/sijill/authz/decision", content=big).status_code == 413


def test_policies_lists_modules_without_tests(client: TestClient) -> None:
    ids = [m["id"] for m in client.get("/v1/policies").json()["result"]]
    assert "authz.rego" in ids and not any(i.endswith("_test.rego") for i in ids)
