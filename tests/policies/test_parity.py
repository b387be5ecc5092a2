"""The embedded engine and the OPA engine (over real HTTP) decide identically; REST fails closed."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from policies import POLICY_DIR, EmbeddedEngine, OpaEngine, PolicyUnavailable
from tests.policies.conftest import PdpProcess
from tests.policies.corpus import NOW, generate

CORPUS = generate(seed=72_18, count=240)


@pytest.fixture(scope="module")
def embedded() -> EmbeddedEngine:
    return EmbeddedEngine()


def _assert_parity(embedded: EmbeddedEngine, remote: OpaEngine) -> None:
    mismatched = []
    for i, doc in enumerate(CORPUS):
        if embedded.decide(doc).document() != remote.decide(doc).document():
            mismatched.append(i)
    assert mismatched == []


def test_corpus_exercises_allow_and_deny_paths(embedded: EmbeddedEngine) -> None:
    results = [embedded.decide(doc) for doc in CORPUS]
    allowed = [r for r in results if r.allow]
    assert len(CORPUS) >= 200
    assert 20 <= len(allowed) <= len(CORPUS) - 20
    actions = {doc.get("action") for doc, r in zip(CORPUS, results, strict=True) if r.allow}
    assert {"lookup", "read_attributes", "eligibility"} <= actions


def test_embedded_and_opa_over_pdp_serve_agree(embedded: EmbeddedEngine, pdp: PdpProcess) -> None:
    remote = OpaEngine(pdp.url, timeout=5)
    try:
        _assert_parity(embedded, remote)
        # The PDP reports its bundle revision (provenance); it is the embedded one.
        assert remote.decide(CORPUS[0]).policy_revision == embedded.revision
    finally:
        remote.close()
    # A real OPA, when one is given (loaded with policies/*.rego and policies/data/*.json),
    # must agree on the same corpus: the policies use nothing only one engine evaluates.
    real = os.environ.get("SIJILL_TEST_OPA_URL")
    if real:
        opa = OpaEngine(real, timeout=5)
        try:
            _assert_parity(embedded, opa)
        finally:
            opa.close()


def test_opa_engine_fails_closed_when_the_pdp_is_stopped() -> None:
    process = PdpProcess()
    remote = OpaEngine(process.url, timeout=2)
    try:
        assert remote.decide(CORPUS[0]).document() is not None
        process.stop()
        with pytest.raises(PolicyUnavailable):
            remote.decide(CORPUS[0])
        with pytest.raises(PolicyUnavailable):
            remote.ping()
    finally:
        process.stop()
        remote.close()


def test_opa_engine_times_out_into_policy_unavailable() -> None:
    # A listener that accepts but never answers: the engine must give up and deny.
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        remote = OpaEngine(f"http://127.0.0.1:{port}", timeout=0.3)
        started = time.monotonic()
        with pytest.raises(PolicyUnavailable):
            remote.decide(CORPUS[0])
        assert time.monotonic() - started < 3
        remote.close()


def test_pdp_serve_reloads_changed_policy_files(tmp_path: Path) -> None:
    policy_dir = tmp_path / "policies"
    policy_dir.mkdir()
    for path in POLICY_DIR.glob("*.rego"):
        shutil.copy(path, policy_dir / path.name)
    shutil.copytree(POLICY_DIR / "data", policy_dir / "data")
    process = PdpProcess(policy_dir)
    remote = OpaEngine(process.url, timeout=5, policy_dir=policy_dir)
    doc = {
        "subject": {
            "kind": "agency",
            "agency": "cnss",
            "sector": "social",
            "scopes": ["agency:query"],
        },
        "action": "read_attributes",
        "purpose": "asd_payment",
        "resource": {"kind": "person", "fields": ["phone"]},
        "time_ns": NOW,
    }
    try:
        first = remote.decide(doc)
        assert first.allow
        registry = policy_dir / "data" / "registry.json"
        registry.write_text(registry.read_text().replace('"asd_payment": [', '"gone": ['))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            result = remote.decide(doc)
            if result.policy_revision != first.policy_revision:
                break
            time.sleep(0.1)
        assert result.policy_revision != first.policy_revision
        assert not result.allow
    finally:
        process.stop()
        remote.close()


def test_opa_engine_over_a_socket_file_nobody_listens_on_fails_closed(tmp_path: Path) -> None:
    remote = OpaEngine(f"unix://{tmp_path / 'absent.sock'}", timeout=1)
    try:
        with pytest.raises(PolicyUnavailable):
            remote.decide(CORPUS[0])
    finally:
        remote.close()
