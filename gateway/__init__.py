"""The gateway: Sijill's policy enforcement point and composition root.

Owns the HTTP API, the web pages, the command line, settings and database migrations.
It may import every other room (`identity`, `consent`, `policies`, `vault`, `audit`);
nothing imports it. It must never hold personal data beyond the response to the request
that a policy decision released it for, and never log it.
"""

# regopy's native library carries its own allocator and exports operator new/delete; loaded
# after numpy's C++ runtime, its allocations bind across the two and every embedded policy
# decision leaks its working memory. Loading it first, before any room imports numpy, keeps
# a worker's memory flat (tests/gateway/test_worker_memory.py holds it so).
import regopy  # noqa: F401  # isort: skip

__version__ = "0.1.0"
