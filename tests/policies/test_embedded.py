"""The embedded engine: deny by default, reload without restart, thread safety, fail closed."""

from __future__ import annotations

import shutil
import threading
import uuid
from pathlib import Path

import pytest

from policies import POLICY_DIR, EmbeddedEngine, PolicyError, PolicyUnavailable
from tests.policies.corpus import NOW, generate


@pytest.fixture(scope="module")
def engine() -> EmbeddedEngine:
    return EmbeddedEngine()


@pytest.fixture
def policy_copy(tmp_path: Path) -> Path:
    """A private copy of the policy tree that a test may edit."""
    target = tmp_path / "policies"
    target.mkdir()
    for path in POLICY_DIR.glob("*.rego"):
        shutil.copy(path, target / path.name)
    shutil.copytree(POLICY_DIR / "data", target / "data")
    return target


def asd_read() -> dict:
    return {
        "subject": {
            "kind": "agency",
            "client_id": "c",
            "agency": "cnss",
            "sector": "social",
            "scopes": ["agency:query"],
        },
        "action": "read_attributes",
        "purpose": "asd_payment",
        "resource": {"kind": "person", "fields": ["phone"]},
        "consents": [],
        "objections": [],
        "time_ns": NOW,
    }


def test_with_empty_data_every_request_is_denied(tmp_path: Path) -> None:
    empty = tmp_path / "empty-data"
    empty.mkdir()
    engine = EmbeddedEngine(POLICY_DIR, data_dir=empty)
    corpus = generate(seed=6, count=300)
    results = [engine.decide(doc) for doc in corpus]
    assert not any(r.allow for r in results)
    assert all(r.fields == () and r.legal_basis is None for r in results)
    # The same corpus does reach allow paths with the real data, so the denials above are
    # the data's absence, not a corpus that never asks anything allowable.
    assert any(EmbeddedEngine().decide(doc).allow for doc in corpus)


def test_each_decision_gets_its_own_uuid4_and_the_revision(engine: EmbeddedEngine) -> None:
    first, second = engine.decide(asd_read()), engine.decide(asd_read())
    assert first.decision_id != second.decision_id
    assert uuid.UUID(first.decision_id).version == 4
    assert first.policy_revision == engine.revision and len(engine.revision) == 64


def test_reload_picks_up_a_changed_policy_and_changes_the_revision(policy_copy: Path) -> None:
    engine = EmbeddedEngine(policy_copy)
    before = engine.revision
    assert engine.decide(asd_read()).allow
    assert engine.reload() is False  # nothing changed
    registry = policy_copy / "data" / "registry.json"
    # Withdraw the ASD declaration: processing it covered must stop without a restart.
    registry.write_text(registry.read_text().replace('"asd_payment": [', '"asd_withdrawn": ['))
    assert engine.reload() is True
    assert engine.revision != before
    after = engine.decide(asd_read())
    assert not after.allow and after.policy_revision == engine.revision


def test_reload_of_a_broken_policy_keeps_the_running_revision(policy_copy: Path) -> None:
    engine = EmbeddedEngine(policy_copy)
    before = engine.revision
    (policy_copy / "authz.rego").write_text("package sijill.authz\n\nthis is not rego {{\n")
    with pytest.raises(PolicyError):
        engine.reload()
    assert engine.revision == before
    assert engine.decide(asd_read()).allow


def test_test_files_do_not_change_the_revision(policy_copy: Path) -> None:
    before = EmbeddedEngine(policy_copy).revision
    (policy_copy / "extra_test.rego").write_text("package x_test\n\ntest_a if true\n")
    assert EmbeddedEngine(policy_copy).revision == before


def test_a_policy_without_a_decision_fails_closed(tmp_path: Path) -> None:
    (tmp_path / "p.rego").write_text("package sijill.other\n\nx := 1\n")
    engine = EmbeddedEngine(tmp_path)
    with pytest.raises(PolicyUnavailable):
        engine.decide(asd_read())
    with pytest.raises(PolicyUnavailable):
        engine.ping()


def test_a_conflicting_policy_fails_closed_not_open(tmp_path: Path) -> None:
    # Two values for one complete rule: an evaluation error, which must deny.
    (tmp_path / "p.rego").write_text(
        'package sijill.authz\n\ndecision := {"allow": true} if input.a\n\n'
        'decision := {"allow": false} if input.a\n'
    )
    engine = EmbeddedEngine(tmp_path)
    with pytest.raises(PolicyUnavailable):
        engine.decide({"a": True})


def test_allow_without_legal_basis_is_refused_as_malformed(tmp_path: Path) -> None:
    (tmp_path / "p.rego").write_text(
        'package sijill.authz\n\ndecision := {"allow": true, "fields": ["phone"], '
        '"obligations": {}, "reasons": [], "legal_basis": null, "withheld": {}}\n'
    )
    with pytest.raises(PolicyUnavailable):
        EmbeddedEngine(tmp_path).decide(asd_read())


def test_concurrent_decisions_match_sequential_ones(engine: EmbeddedEngine) -> None:
    corpus = generate(seed=11, count=60)
    expected = [engine.evaluate(doc) for doc in corpus]
    mismatches: list[int] = []

    def worker(offset: int) -> None:
        for i in range(len(corpus)):
            j = (i + offset) % len(corpus)
            if engine.evaluate(corpus[j]) != expected[j]:
                mismatches.append(j)

    threads = [threading.Thread(target=worker, args=(k * 7,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert mismatches == []


def test_ping_passes_on_the_shipped_policy(engine: EmbeddedEngine) -> None:
    engine.ping()
