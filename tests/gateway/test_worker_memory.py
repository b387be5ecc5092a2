"""A gateway worker's memory stays flat under policy decisions: the embedded engine's native
library is loaded before numpy's (gateway/__init__.py), so its allocations are freed."""

from __future__ import annotations

import subprocess
import sys

# Run in a fresh interpreter: the order native libraries load in is what is under test, and
# this test process has loaded its own in whatever order its tests imported them.
PROBE = """
import time
import gateway.app  # as a worker starts: the gateway and every room it imports
import numpy  # noqa: F401  (the RSU scoring's; loaded by now in any case)
import psutil
from policies import EmbeddedEngine

engine = EmbeddedEngine()
doc = {
    "subject": {"kind": "agency", "client_id": "cnss", "sector": "social",
                "scopes": ["agency:query"], "agency": "cnss",
                "purposes": ["amo_tadamon_enrolment"]},
    "action": "read_attributes",
    "resource": {"kind": "person", "fields": ["given_name_lat", "birth_date", "phone"]},
    "purpose": "amo_tadamon_enrolment", "consents": [], "objections": [],
    "time_ns": time.time_ns(),
}
for _ in range(200):
    engine.decide(doc)
before = psutil.Process().memory_info().rss
for _ in range(2000):
    engine.decide(doc)
print(psutil.Process().memory_info().rss - before)
"""


def test_two_thousand_policy_decisions_leave_a_worker_within_ten_megabytes() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    grown = int(out.stdout.strip().splitlines()[-1])
    assert grown < 10 * 2**20, f"grew by {grown / 2**20:.1f} MB"
