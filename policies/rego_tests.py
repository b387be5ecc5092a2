"""Runs the Rego unit tests (``test_*`` rules of ``*_test.rego``) through the embedded engine.

regopy has no ``opa test``; each test rule becomes a bundle entrypoint and passes when it
evaluates to ``true`` (undefined or an error is a failure, as in ``opa test``).

rego-cpp 1.5.2 cannot evaluate ``with input as …`` against these policies (it aborts the
process or answers undefined; measured), so a test states its input as a sibling rule:
``test_<name>`` runs with ``input`` set to the value of ``input_<name>`` when that rule exists,
and with an empty input otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import regopy

from policies.embedded import compile_bundle, evaluate_entrypoint
from policies.engine import PolicyError, PolicyUnavailable

__all__ = ["RegoTest", "discover", "run_rego_tests"]

_PACKAGE = re.compile(r"^package\s+([A-Za-z_][A-Za-z0-9_.]*)", re.MULTILINE)
_TEST = re.compile(r"^(test_[A-Za-z0-9_]+)\s+if\b", re.MULTILINE)
_INPUT = re.compile(r"^(input_[A-Za-z0-9_]+)\s+:=", re.MULTILINE)


@dataclass(frozen=True)
class RegoTest:
    file: str
    package: str
    rule: str
    has_input: bool = False

    @property
    def entrypoint(self) -> str:
        return f"{self.package.replace('.', '/')}/{self.rule}"

    @property
    def input_entrypoint(self) -> str:
        return f"{self.package.replace('.', '/')}/input_{self.rule.removeprefix('test_')}"

    @property
    def name(self) -> str:
        return f"{self.package}.{self.rule}"


def discover(policy_dir: Path) -> list[RegoTest]:
    tests: list[RegoTest] = []
    for path in sorted(policy_dir.glob("*_test.rego")):
        source = path.read_text(encoding="utf-8")
        package = _PACKAGE.search(source)
        if package is None:
            raise PolicyError(f"{path.name}: no package line")
        inputs = {m.group(1) for m in _INPUT.finditer(source)}
        seen = set()
        for match in _TEST.finditer(source):
            if match.group(1) not in seen:  # a test may have several bodies (OR)
                seen.add(match.group(1))
                rule = match.group(1)
                has_input = f"input_{rule.removeprefix('test_')}" in inputs
                tests.append(RegoTest(path.name, package.group(1), rule, has_input))
    return tests


class RegoTestRunner:
    """Compiles the policy with its tests once; evaluates one test rule per call."""

    def __init__(self, policy_dir: Path) -> None:
        self.tests = discover(policy_dir)
        entrypoints = tuple(t.entrypoint for t in self.tests) + tuple(
            t.input_entrypoint for t in self.tests if t.has_input
        )
        self._compiled = compile_bundle(policy_dir, None, entrypoints, include_tests=True)
        self._interpreter = regopy.Interpreter()

    def run(self, test: RegoTest) -> bool:
        bundle = self._compiled.bundle
        try:
            given = (
                evaluate_entrypoint(self._interpreter, bundle, test.input_entrypoint, {})
                if test.has_input
                else {}
            )
            value = evaluate_entrypoint(self._interpreter, bundle, test.entrypoint, given)
        except PolicyUnavailable:
            return False
        return value is True


def run_rego_tests(policy_dir: Path) -> dict[str, bool]:
    runner = RegoTestRunner(policy_dir)
    return {t.name: runner.run(t) for t in runner.tests}
