"""Scheduled jobs: work every serving process offers to do, done by one of them at a time.

A :class:`ScheduledJob` is a thread each worker process runs. Every ``interval_s`` it takes or
renews its lease (gateway/leases.py, one lease per job name), and only the holder does the work,
inside :meth:`Lease.guard`, so a holder whose lease expired mid-way cannot go on writing as if
it still held it. A crashed holder stops renewing; another process takes the job at its next
tick. Retention (``sijill retention run``) and the delivery of citizens' notifications run this
way in ``sijill serve``; the same work is a CLI command for operators who schedule it elsewhere.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import suppress

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from gateway.leases import Lease, LeaseLost

log = logging.getLogger("sijill.jobs")


class ScheduledJob:
    """``work`` run every ``interval_s`` seconds by the holder of the lease ``name``."""

    def __init__(
        self,
        name: str,
        interval_s: float,
        work: Callable[[], object],
        *,
        engine: Engine | None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("a job runs every positive number of seconds")
        self.name = name
        self.interval_s = interval_s
        self.work = work
        # The lease outlives two missed ticks, so a slow run does not hand the job over.
        self.lease = Lease(engine, f"job:{name}", ttl_s=2 * interval_s + 10) if engine else None
        self.wake = threading.Event()  # set to run the next tick now
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> bool:
        """Run the work once if this process holds (or can take) the lease; whether it ran.
        A failing run is logged and retried at the next tick: the job never stops the server."""
        try:
            if self.lease is None:
                self.work()
                return True
            if not self.lease.acquire():
                return False  # another process runs it
            with self.lease.guard():
                self.work()
            return True
        except LeaseLost:
            log.warning("job not run: its lease expired", extra={"job": self.name})
        except SQLAlchemyError as exc:
            log.warning(
                "job not run: a store is unreachable",
                extra={"job": self.name, "error_class": type(exc).__name__},
            )
        except Exception:
            log.exception("job failed", extra={"job": self.name})
        return False

    def _run(self) -> None:
        while not self._stop.is_set():
            self.wake.wait(self.interval_s)
            self.wake.clear()
            if self._stop.is_set():
                break
            self.tick()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"job-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the clock and give the lease up, so another process takes the job at once."""
        self._stop.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self.lease is not None:
            with suppress(SQLAlchemyError):  # unreachable: the lease expires on its own
                self.lease.release()
