"""Checkpoints are signed by one process at a time: the holder of the lease
``audit-checkpoints`` (gateway/leases.py, gateway/witnessing.py)."""

from __future__ import annotations

import time

from gateway.leases import Lease
from gateway.witnessing import Checkpointer
from tests.gateway.conftest import World


def signed_size(world: World) -> int:
    latest = world.services.audit.storage.latest_checkpoint()
    return 0 if latest is None else int(latest.tree_size)


def lookup(world: World) -> None:
    body = {"cnie": "AB123456", "purpose": "amo_tadamon_enrolment"}
    assert world.call("cnss", "POST", "/v1/agency/lookup", json=body).status_code == 200


def test_only_the_lease_holder_signs_and_another_takes_over_when_it_lapses(world: World) -> None:
    own = world.services.checkpointer
    assert own is not None and own.lease is not None
    own.stop()  # this app's clock signs its tail and gives the lease up
    audit = world.services.audit
    engine = world.services.engines["main"]
    first = Checkpointer(audit, None, 600, Lease(engine, "audit-checkpoints", ttl_s=0.5))
    second = Checkpointer(audit, None, 600, Lease(engine, "audit-checkpoints", ttl_s=0.5))

    lookup(world)
    first.tick()
    assert signed_size(world) == audit.size()  # the first to ask holds the lease and signs

    lookup(world)
    second.tick()
    assert signed_size(world) < audit.size()  # a process without the lease does not sign

    time.sleep(0.7)  # the holder stops renewing, as a crashed one does
    second.tick()
    assert signed_size(world) == audit.size()
    assert second.lease is not None and first.lease is not None
    assert second.lease.token > first.lease.token

    lookup(world)
    first.tick()  # the old holder finds the lease taken and does not sign
    assert signed_size(world) < audit.size()
    second.stop()  # a clean stop signs the tail and releases
    assert signed_size(world) == audit.size()
    assert first.lease.acquire()
