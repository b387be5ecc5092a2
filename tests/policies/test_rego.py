"""The Rego unit tests (policies/*_test.rego), one pytest case per ``test_*`` rule."""

from __future__ import annotations

import pytest

from policies import POLICY_DIR
from policies.rego_tests import RegoTestRunner, discover

TESTS = discover(POLICY_DIR)


@pytest.fixture(scope="module")
def runner() -> RegoTestRunner:
    return RegoTestRunner(POLICY_DIR)


def test_rego_suite_is_not_empty() -> None:
    assert len(TESTS) >= 30


@pytest.mark.parametrize("rego_test", TESTS, ids=[t.rule for t in TESTS])
def test_rego(runner: RegoTestRunner, rego_test) -> None:
    assert runner.run(rego_test), f"{rego_test.file}: {rego_test.name} did not evaluate to true"
