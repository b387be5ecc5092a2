"""`make test` and `make demo` install the system packages they need, or say in one line how."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STEP = ROOT / "scripts" / "system-packages"


def _dry_run(target: str) -> list[str]:
    out = subprocess.run(
        ["make", "-n", target], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return out.splitlines()


def test_make_test_and_demo_run_the_system_package_step_first() -> None:
    for target in ("test", "demo"):
        lines = _dry_run(target)
        assert lines[0] == f"scripts/system-packages {target}", lines[:3]


def test_ci_runs_the_same_step_as_make_test() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "scripts/system-packages test" in ci
    assert "apt-get" not in ci


def _fake_apt(tmp_path: Path, body: str) -> tuple[Path, Path]:
    """An empty directory standing for a machine without SoftHSM2 or Chromium, and an
    `apt-get` placed first on PATH that runs ``body``."""
    hidden = tmp_path / "system"
    hidden.mkdir()
    fakebin = tmp_path / "bin"
    fakebin.mkdir()
    apt = fakebin / "apt-get"
    apt.write_text(f"#!/bin/sh\n{body}\n")
    apt.chmod(0o755)
    return hidden, fakebin


def _step(hidden: Path, fakebin: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{fakebin}:{os.environ['PATH']}",
        "SIJILL_SYSTEM_PATH": str(hidden),
    }
    return subprocess.run([str(STEP), "test"], env=env, capture_output=True, text=True)


def test_step_without_softhsm2_that_cannot_install_stops_with_one_line_naming_it(
    tmp_path: Path,
) -> None:
    hidden, fakebin = _fake_apt(tmp_path, "exit 100")
    result = _step(hidden, fakebin)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "softhsm2" in lines[0]
    assert "apt-get install -y softhsm2" in lines[0]


def test_step_without_softhsm2_installs_it_with_apt_when_root(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        # Not root: the step cannot install, and must say how instead.
        hidden, fakebin = _fake_apt(tmp_path, "exit 0")
        result = _step(hidden, fakebin)
        assert result.returncode != 0
        assert "sudo apt-get install -y softhsm2" in result.stderr
        return
    # The fake apt "installs" a package by putting its command where the step looks.
    where = tmp_path / "system"
    hidden, fakebin = _fake_apt(
        tmp_path,
        f'echo "$@" >> {tmp_path}/apt.log\n'
        'case "$1" in install) ;; *) exit 0 ;; esac\n'
        f'for p in "$@"; do case "$p" in softhsm2) n=softhsm2-util ;; chromium) n=chromium ;; '
        f'*) continue ;; esac; printf "#!/bin/sh\\n" > {where}/$n; '
        f"chmod +x {where}/$n; done",
    )
    result = _step(hidden, fakebin)
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "apt.log").read_text()
    assert "install" in calls and "softhsm2" in calls
    assert (hidden / "softhsm2-util").exists()
