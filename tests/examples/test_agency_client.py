"""examples/agency_client.py: its documented commands fit the demo, and it imports cleanly."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from gateway.demo import DEMO_AGENCIES

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "agency_client.py"


def test_docstring_commands_name_demo_agencies_and_their_purposes() -> None:
    doc = EXAMPLE.read_text().split('"""')[1]
    runs = re.findall(r"agency_client\.py --agency (\S+) --purpose (\S+)", doc)
    demo = {client_id: purposes.split() for client_id, _, _, purposes in DEMO_AGENCIES}
    assert runs, doc
    assert {agency for agency, _ in runs} == set(demo)
    for agency, purpose in runs:
        assert purpose in demo[agency], (agency, purpose)


def test_example_imports_without_authlib_deprecation_warnings() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-W",
            "error::DeprecationWarning",
            "-W",
            "error:::authlib",
            "-c",
            f"import runpy; runpy.run_path({str(EXAMPLE)!r}, run_name='example')",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "Deprecat" not in result.stderr
