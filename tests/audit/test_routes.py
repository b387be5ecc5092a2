"""The audit log over HTTP: public transparency routes, auditor-only routes closed by default."""

from __future__ import annotations

import base64

from fastapi.testclient import TestClient

from audit import AuditLog, open_checkpoint
from audit.merkle import verify_consistency, verify_inclusion
from tests.audit.conftest import make_entry
from tests.gateway.conftest import World


def _log(client: TestClient) -> AuditLog:
    log: AuditLog = client.app.state.services.audit  # type: ignore[attr-defined]
    return log


def _fill(client: TestClient, n: int = 12) -> AuditLog:
    log = _log(client)
    for i in range(n):
        log.append(make_entry(i))
    return log


def test_checkpoint_is_a_signed_note_anyone_can_verify(client: TestClient) -> None:
    start = _log(client).size()  # the app's start-up may already have logged its revision
    log = _fill(client)
    log.issue_checkpoint()  # on demand; otherwise every N entries or T seconds
    r = client.get("/v1/audit/checkpoint")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    key = client.get("/v1/audit/verifier-key")
    assert key.status_code == 200
    cp = open_checkpoint(r.text, key.text.strip())
    assert cp.tree_size == start + 12 and cp.root_hash == log.root(start + 12)


def test_checkpoint_json_view_has_hex_root_and_timestamp(client: TestClient) -> None:
    start = _log(client).size()
    _fill(client, 3).issue_checkpoint()
    body = client.get("/v1/audit/checkpoint", params={"format": "json"}).json()
    assert set(body) == {"origin", "tree_size", "root_hash", "timestamp", "note"}
    assert bytes.fromhex(body["root_hash"]) == base64.b64decode(body["note"].split("\n")[2])
    assert body["timestamp"].endswith("Z") and body["tree_size"] == start + 3


def test_consistency_proofs_are_public_and_verify(client: TestClient) -> None:
    log = _fill(client, 20)
    body = client.get("/v1/audit/proofs/consistency", params={"first": 7, "second": 20}).json()
    assert (body["first"], body["second"]) == (7, 20)
    proof = [bytes.fromhex(h) for h in body["proof"]]
    assert verify_consistency(7, 20, log.root(7), log.root(20), proof)


def test_a_proof_for_a_tree_larger_than_the_log_is_a_400(client: TestClient) -> None:
    _fill(client, 2)
    r = client.get("/v1/audit/proofs/consistency", params={"first": 1, "second": 99})
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/problem+json")


def test_auditor_routes_need_an_auditor_token(world: World) -> None:
    _fill(world.api, 2)
    for path, params in (
        ("/v1/audit/entries", {}),
        ("/v1/audit/stats", {}),
    ):
        assert world.api.get(path, params=params).status_code == 401
        r = world.call("cnss", "GET", path, params=params)  # an agency is not an auditor
        assert r.status_code == 403, r.text


def test_inclusion_proofs_are_public_like_consistency_proofs(client: TestClient) -> None:
    log = _fill(client, 5)
    log.issue_checkpoint()
    r = client.get("/v1/audit/proofs/inclusion", params={"index": 3, "tree_size": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    path = [bytes.fromhex(h) for h in body["audit_path"]]
    assert verify_inclusion(bytes.fromhex(body["leaf_hash"]), 3, 5, path, log.root(5))
    assert set(body) == {"leaf_index", "tree_size", "leaf_hash", "audit_path"}  # hashes only


def test_auditors_get_inclusion_proofs_entries_and_stats(world: World) -> None:
    # The world's set-up (a household scored) is already on the record: count from there.
    s = _log(world.api).size()
    log = _fill(world.api, 10)
    log.append(make_entry(99, agency="anam", outcome="deny"))
    r = world.call(
        "cndp",
        "GET",
        "/v1/audit/proofs/inclusion",
        params={"index": s + 4, "tree_size": s + 11},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"leaf_index", "tree_size", "leaf_hash", "audit_path"}
    path = [bytes.fromhex(h) for h in body["audit_path"]]
    assert verify_inclusion(bytes.fromhex(body["leaf_hash"]), s + 4, s + 11, path, log.root(s + 11))
    page = world.call("cndp", "GET", "/v1/audit/entries", params={"agency": "anam"}).json()
    assert [e["index"] for e in page["entries"]] == [s + 10]
    assert page["entries"][0]["outcome"] == "deny" and page["next_after"] is None
    first = world.call(
        "cndp", "GET", "/v1/audit/entries", params={"after": s - 1, "limit": 4}
    ).json()
    assert [e["index"] for e in first["entries"]] == [s, s + 1, s + 2, s + 3]
    assert first["next_after"] == s + 3
    rest = world.call(
        "cndp",
        "GET",
        "/v1/audit/entries",
        params={"after": s + 3, "limit": 7, "agency": "cnss"},
    ).json()
    assert [e["index"] for e in rest["entries"]] == list(range(s + 4, s + 10))
    stats = world.call("cndp", "GET", "/v1/audit/stats").json()
    anam = [g for g in stats["groups"] if g["agency"] == "anam"]
    assert [(g["outcome"], g["count"]) for g in anam] == [("deny", 1)]
    assert stats["tree_size"] == log.size()


def test_every_auditor_read_is_itself_on_the_record(world: World) -> None:
    log = _fill(world.api, 3)
    before = log.size()
    assert world.call("cndp", "GET", "/v1/audit/stats").status_code == 200
    reads = log.entries(after=before - 1)
    assert [(e.entry.actor["kind"], e.entry.action) for e in reads] == [
        ("auditor", "read_audit_stats")
    ]


def test_readiness_reports_the_audit_store(client: TestClient) -> None:
    r = client.get("/readyz")
    assert "audit" in r.text
