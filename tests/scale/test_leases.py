"""Leases: one holder at a time, a crashed holder's lease expires, and an expired holder is
fenced off (gateway/leases.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from gateway.db import make_engine
from gateway.leases import Lease, LeaseLost


@pytest.fixture
def engine(migrated_urls: dict[str, str]) -> Iterator[Engine]:
    e = make_engine(migrated_urls["main"], pool_size=4)
    yield e
    e.dispose()


def test_one_holder_at_a_time_and_a_renewal_keeps_the_token(engine: Engine) -> None:
    a = Lease(engine, "retention", ttl_s=30)
    b = Lease(engine, "retention", ttl_s=30)
    assert a.acquire()
    first = a.token
    assert not b.acquire()
    assert b.token == 0
    assert a.acquire()
    assert a.token == first
    # Another name is another lease.
    assert Lease(engine, "notifications", ttl_s=30).acquire()


def test_an_expired_lease_goes_to_another_holder_with_a_higher_token(engine: Engine) -> None:
    crashed = Lease(engine, "audit-checkpoints", ttl_s=0.3)
    assert crashed.acquire()
    old = crashed.token
    other = Lease(engine, "audit-checkpoints", ttl_s=30)
    assert not other.acquire()
    time.sleep(0.5)  # the holder stopped renewing
    assert other.acquire()
    assert other.token == old + 1
    assert not crashed.acquire()  # it woke up too late


def test_an_expired_holder_cannot_write_under_its_fence(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE fenced_writes (holder TEXT)"))
    stale = Lease(engine, "job", ttl_s=0.3)
    assert stale.acquire()
    time.sleep(0.5)
    fresh = Lease(engine, "job", ttl_s=30)
    assert fresh.acquire()
    with pytest.raises(LeaseLost), stale.fenced() as conn:
        conn.execute(text("INSERT INTO fenced_writes VALUES ('stale')"))
    with pytest.raises(LeaseLost), stale.guard():
        pass
    with fresh.fenced() as conn:
        conn.execute(text("INSERT INTO fenced_writes VALUES ('fresh')"))
    with fresh.guard():
        pass
    with engine.connect() as conn:
        assert conn.execute(text("SELECT holder FROM fenced_writes")).scalars().all() == ["fresh"]


def test_a_takeover_waits_for_the_fenced_holder_to_finish(engine: Engine) -> None:
    holder = Lease(engine, "job", ttl_s=1.0)
    assert holder.acquire()
    rival = Lease(engine, "job", ttl_s=30)
    took: list[tuple[bool, float]] = []

    def take_over() -> None:
        time.sleep(0.6)  # the lease has expired, the holder is still inside its fence
        took.append((rival.acquire(), time.monotonic()))

    time.sleep(0.5)
    with holder.fenced():
        thread = threading.Thread(target=take_over)
        thread.start()
        time.sleep(0.8)
        finished = time.monotonic()
    thread.join()
    assert took[0][0]  # it took the expired lease ...
    assert took[0][1] >= finished  # ... only once the fenced work was over
    assert rival.token == holder.token + 1


def test_a_released_lease_is_taken_at_once(engine: Engine) -> None:
    a = Lease(engine, "job", ttl_s=300)
    b = Lease(engine, "job", ttl_s=300)
    assert a.acquire()
    assert not b.acquire()
    a.release()
    assert a.token == 0
    assert b.acquire()


def test_a_scheduled_job_runs_in_one_process_at_a_time_and_moves_when_given_up(
    engine: Engine,
) -> None:
    from gateway.jobs import ScheduledJob

    runs: list[str] = []
    first = ScheduledJob("retention", 60, lambda: runs.append("first"), engine=engine)
    second = ScheduledJob("retention", 60, lambda: runs.append("second"), engine=engine)
    assert first.tick()
    assert not second.tick()  # the first holds the job's lease
    assert first.tick()
    first.stop()  # a clean stop gives the lease up
    assert second.tick()
    assert runs == ["first", "first", "second"]


def test_a_failing_job_is_logged_and_runs_again_at_the_next_tick(engine: Engine) -> None:
    from gateway.jobs import ScheduledJob

    attempts: list[int] = []

    def work() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("the sender is down")

    job = ScheduledJob("notifications", 60, work, engine=engine)
    assert not job.tick()
    assert job.tick()
    assert len(attempts) == 2
