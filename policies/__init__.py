"""The policy layer: who may see what, for which purpose, on which legal basis.

This room owns the Rego policies (``*.rego``, Rego v1, package ``sijill.authz``), their tests
(``*_test.rego``) and static data (``data/``: processing registry, programs, field catalogue,
action catalogue), the engines that evaluate them (embedded regopy, OPA over REST), the cache
that reuses a decision until the horizon the policy states for it, the OPA-compatible decision
server (``sijill pdp serve``), masked decision logging, and the only code that creates
``vault.Decision`` objects (:class:`DecisionIssuer`).

It may import ``vault`` (for the ``Decision`` type and its signing payload) and nothing else of
Sijill. It must never see personal data values beyond what a policy input carries, never log
input values, and never answer "allow" when it cannot evaluate: engines raise
:class:`PolicyUnavailable` and callers deny.
"""

from policies.cache import DecisionCache
from policies.decision_log import DecisionLog
from policies.decisions import DecisionIssuer, SealRefused
from policies.embedded import EmbeddedEngine
from policies.engine import (
    DECISION_PATH,
    POLICY_DIR,
    PolicyEngine,
    PolicyError,
    PolicyResult,
    PolicyUnavailable,
    policy_revision,
)
from policies.opa import OpaEngine

__all__ = [
    "DECISION_PATH",
    "POLICY_DIR",
    "DecisionCache",
    "DecisionIssuer",
    "DecisionLog",
    "EmbeddedEngine",
    "OpaEngine",
    "PolicyEngine",
    "PolicyError",
    "PolicyResult",
    "PolicyUnavailable",
    "SealRefused",
    "build_engine",
    "policy_revision",
]


def build_engine(spec: str, timeout_s: float = 2.0) -> PolicyEngine:
    """``"embedded"`` or the http(s) URL of an OPA server (SIJILL_POLICY_ENGINE)."""
    if spec == "embedded":
        return EmbeddedEngine()
    return OpaEngine(spec, timeout=timeout_s)
