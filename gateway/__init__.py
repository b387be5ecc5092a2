"""The gateway: Sijill's policy enforcement point and composition root.

Owns: the HTTP API (``routes/``), the web pages, the command line (``cli/``), the enforcement
point (``authz.py``: decide, record, reveal), the composition root (``services.py``: every
room's service object, built once per app), settings and database migrations.

May import: every other room (``identity``, ``consent``, ``policies``, ``vault``, ``audit``,
``storekit``); nothing imports the gateway.

Must never: hold personal data beyond the response to the request that a policy decision
released it for, or log it; touch a key, a ciphertext or a table of another room (it calls
the room's public names); keep global state outside :class:`gateway.services.Services`.
"""

# regopy's native library carries its own allocator and exports operator new/delete; loaded
# after numpy's C++ runtime, its allocations bind across the two and every embedded policy
# decision leaks its working memory. Loading it first, before any room imports numpy, keeps
# a worker's memory flat (tests/gateway/test_worker_memory.py holds it so).
import regopy  # noqa: F401  # isort: skip

__version__ = "0.1.0"
