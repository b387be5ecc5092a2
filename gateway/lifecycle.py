"""What a worker does when it starts: put the policy revision it enforces on the record.

A change of the processing registry or of the rules is a new policy revision (the SHA-256 of
the policy and data files). The first worker to run a revision appends one ``policy_revision``
entry to the audit log, so the CNDP sees in the log itself when each set of rules took effect.
"""

from __future__ import annotations

import logging
import time

from audit import AuditEntry, AuditUnavailable, CheckpointRefused, EntryFilter
from gateway.services import Services

log = logging.getLogger("sijill.lifecycle")
ACTION = "policy_revision"


def start_audit(services: Services) -> None:
    """Hold the audit store to what the signer remembers before anything is appended, and
    sign what the last run left unsigned. A rewritten or rolled-back store stops the log here:
    every request that needs it fails closed (503) and /readyz says so."""
    try:
        services.audit.check_store()
        # Witnesses are brought up to date by the checkpointer's thread, once serving.
        # Under the checkpoint lease: one signer across processes and hosts.
        if services.checkpointer is not None:
            services.checkpointer.sign_if_grown()
        else:
            services.audit.checkpoint_if_grown()
    except CheckpointRefused:
        log.critical("the audit log refuses the store's tree; requests fail closed")
    except AuditUnavailable:
        log.error("the audit store is unreachable at start")


def report_policy_engine(services: Services) -> str | None:
    """Say at start, once, if the policy engine does not answer: the gateway serves, but every
    decision it needs is denied (fail closed) until the engine answers."""
    try:
        services.policy.ping()
    except Exception as exc:
        problem = (
            f"the policy engine at {services.settings.policy_engine} does not answer "
            f"({type(exc).__name__}): every request that needs a decision is denied until it does"
        )
        log.error(problem)
        return problem
    return None


def record_policy_revision(services: Services) -> bool:
    """Append a ``policy_revision`` entry unless the newest one already names this revision.
    Returns whether an entry was appended. Two workers starting together may both append;
    the log then shows the same revision twice, which is harmless and visible."""
    revision = services.policy.revision
    try:
        size = services.audit.size()
        newest = services.audit.entries(EntryFilter(action=ACTION), before=size, limit=1)
        if newest and newest[0].entry.policy_revision == revision:
            return False
        services.audit.append(
            AuditEntry(
                time_ns=time.time_ns(),
                actor={"kind": "system", "id": "gateway", "sector": None},
                action=ACTION,
                subject=None,
                policy_revision=revision,
                outcome="allow",
                reasons=["policy_loaded"],
            )
        )
    except AuditUnavailable:
        # /readyz reports the audit store; requests fail closed until it is back.
        log.error("could not record the policy revision")
        return False
    return True
