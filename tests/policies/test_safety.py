"""The Rego safety lint (policies/safety.py): what OPA's compiler calls an unsafe variable is
refused here, since regopy evaluates such a rule silently (issue 21)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from policies import POLICY_DIR
from policies.safety import check_files, check_sources

# The rule policies/authz_test.rego held until issue 21: `action` is bound nowhere in its
# package (it is a rule of sijill.authz, not of sijill.authz_test).
OLD_UNSAFE_RULE = """package sijill.authz_test

import rego.v1

import data.sijill.authz

citizen := {"kind": "citizen", "idcs": "2718281828", "scopes": ["citizen:self"]}

now := 1795910400000000000

input_citizen_objects_and_manages_consents_and_reads_score := {
			"subject": citizen, "action": action,
			"resource": {"kind": "person", "owner": "2718281828"}, "time_ns": now,
		}
"""


def unsafe(source: str) -> list[str]:
    return [u.var for u in check_sources([("m.rego", "package p\n\nimport rego.v1\n" + source)])]


def test_every_rego_file_of_the_policies_is_safe() -> None:
    files = sorted(POLICY_DIR.glob("*.rego"))
    assert any(f.name.endswith("_test.rego") for f in files) and len(files) >= 4
    assert [str(u) for u in check_files(files)] == []


def test_the_old_unsafe_test_input_is_refused() -> None:
    [problem] = check_sources([("authz_test.rego", OLD_UNSAFE_RULE)])
    assert problem.var == "action" and problem.line == 12
    assert problem.rule == "input_citizen_objects_and_manages_consents_and_reads_score"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('x := {"a": action}\n', ["action"]),
        ("y if {\n\tz := q\n}\n", ["q"]),
        ("y if {\n\tq == 1\n}\n", ["q"]),
        ("y if {\n\tnot f(q)\n}\n\nf(a) := a\n", ["q"]),
        ("y if {\n\tz := input.a\n\tw > z\n}\n", ["w"]),
        ("y := [e | some k in data.x; k > 1]\n", ["e"]),
        ("y := 1 if input.a\n\nelse := v\n", ["v"]),
        ("y if {\n\tevery x in data.xs {\n\t\tq > x\n\t}\n}\n", ["q"]),
        ("y contains v if {\n\tsome k in data.xs\n\tv > k\n}\n", ["v"]),
        ("y if {\n\ta := b\n\tb := a\n}\n", ["a", "b"]),
    ],
)
def test_an_unbound_variable_is_reported(source: str, expected: list[str]) -> None:
    assert sorted(unsafe(source)) == expected


@pytest.mark.parametrize(
    "source",
    [
        "y if {\n\tz := input.a\n\tz > 1\n}\n",
        "y := z if z := input.a\n",
        "y contains v if {\n\tsome v in data.xs\n}\n",
        "y contains k if {\n\tsome k, v in data.xs\n\tv > 1\n}\n",
        "y contains i if {\n\tdata.a[i]\n}\n",
        "y := [e |\n\tsome e in data.x\n\te > 1\n]\n",
        "f(xs) := {x | some x in xs}\n",
        "f(a) := b if {\n\tb := a\n}\n",
        "y := 1 if {\n\tinput.a\n} else := v if {\n\tv := 2\n}\n",
        "y if {\n\tevery x in data.xs {\n\t\tx > 1\n\t}\n}\n",
        "y if {\n\tnot data.flags[input.name]\n}\n",
        "y := count(data.xs) if time.now_ns() > 0\n",
        'm := {f: r |\n\tsome f in data.fs\n\tr := data.rules[f]\n\tr != "none"\n}\n',
        "z := 2\n\ny if z > 1\n",
    ],
)
def test_a_bound_variable_is_accepted(source: str) -> None:
    assert unsafe(source) == []


def test_rules_of_the_same_package_in_other_files_are_known() -> None:
    a = ("a.rego", "package p\n\nimport rego.v1\n\ny if shared > 1\n")
    b = ("b.rego", "package p\n\nimport rego.v1\n\nshared := 2\n")
    assert check_sources([a, b]) == []
    other = ("c.rego", "package q\n\nimport rego.v1\n\nshared := 2\n")
    assert [u.var for u in check_sources([a, other])] == ["shared"]


def test_pdp_test_fails_on_an_unsafe_module(tmp_path: Path) -> None:
    from gateway.cli import app as root_app
    from gateway.cli import register

    for path in POLICY_DIR.glob("*.rego"):
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "unsafe_test.rego").write_text(OLD_UNSAFE_RULE, encoding="utf-8")
    if not any(g.name == "pdp" for g in root_app.registered_groups):
        register.all(root_app)
    result = CliRunner().invoke(root_app, ["pdp", "test", "--policy-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "UNSAFE unsafe_test.rego:12: var action is unsafe" in result.output
