"""Running a national rescoring: plan (or resume) the job, then one scoring process per core
computes batches (:mod:`gateway.rescore.scorer`) and this process writes them as they arrive
(:mod:`gateway.rescore.writer`).
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from gateway.db import make_engine
from gateway.rescore.planner import PlannedBatch, RescoreError, load_models, plan, writing
from gateway.rescore.scorer import Computed, Scorer, Stores
from gateway.rescore.tables import batches, jobs
from gateway.rescore.writer import Writer
from gateway.settings import Settings

__all__ = ["RescoreReport", "run_rescore"]


@dataclass
class RescoreReport:
    job_id: str
    model: str
    households: int
    scored_now: int
    seconds: float
    resumed: bool


def run_rescore(
    settings: Settings,
    version: str,
    *,
    models_dir: Path | None = None,
    batch_size: int = 5000,
    workers: int = 2,
    pause_s: float = 0.0,
    on_progress: Callable[[int, int], None] | None = None,
) -> RescoreReport:
    """Plan (or resume) and run a national rescoring; ``on_progress(done, total)``.

    Raises :class:`RescoreError` when it cannot go on (the message says what to do)."""
    models = load_models(settings, version, models_dir)
    started = time.monotonic()
    assert settings.database_url
    main = make_engine(settings.database_url)
    try:
        job_id, resumed = plan(main, models, version, batch_size)
        with main.connect() as conn:
            total = int(
                conn.execute(select(jobs.c.total).where(jobs.c.job_id == job_id)).scalar_one()
            )
            # The batches left to do, and each one's planned size (for the progress).
            todo = conn.execute(
                PlannedBatch.query()
                .add_columns(batches.c.size)
                .where(batches.c.job_id == job_id, batches.c.status != "done")
                .order_by(batches.c.batch_no)
            ).all()
            pending = [PlannedBatch(*r[:-1]) for r in todo]
            sizes = {int(r.batch_no): int(r.size) for r in todo}
            already = conn.execute(
                select(func.coalesce(func.sum(batches.c.size), 0)).where(
                    batches.c.job_id == job_id, batches.c.status == "done"
                )
            ).scalar_one()
    finally:
        main.dispose()
    done = int(already)
    scored = 0

    def wrote(batch_no: int, n: int) -> None:
        # A batch is done as planned, households dissolved meanwhile (left out) included, so
        # that the progress reaches its total; the report counts those scored.
        nonlocal done, scored
        scored += n
        done += sizes[batch_no]
        if on_progress:
            on_progress(done, total)

    if on_progress:
        on_progress(done, total)
    if workers <= 1 or len(pending) <= 1:
        stores = Stores(settings, version, models_dir)
        writer = Writer(stores, job_id)
        try:
            scorer = Scorer(stores, job_id)
            for batch in pending:
                wrote(batch.batch_no, writer.write(scorer.compute(batch)))
                if pause_s:
                    time.sleep(pause_s)
        finally:
            writer.close()
            stores.close()
    else:
        _run_parallel(settings, version, models_dir, job_id, pending, workers, pause_s, wrote)
    main = make_engine(settings.database_url)
    try:
        with writing(main) as conn:
            left = conn.execute(
                select(func.count())
                .select_from(batches)
                .where(batches.c.job_id == job_id, batches.c.status != "done")
            ).scalar_one()
            if left:
                raise RescoreError(f"{left} batches are not done; run the same command again")
            conn.execute(
                update(jobs).where(jobs.c.job_id == job_id).values(finished_at_ns=time.time_ns())
            )
    finally:
        main.dispose()
    return RescoreReport(job_id, version, total, scored, time.monotonic() - started, resumed)


def _scoring_main(
    settings: Settings,
    version: str,
    models_dir: Path | None,
    job_id: str,
    pending: list[PlannedBatch],
    taken: Any,
    results: Any,
    pause_s: float,
) -> None:
    """A scoring process: takes the next batch nobody took, computes it, hands it over."""
    stores = Stores(settings, version, models_dir)
    scorer = Scorer(stores, job_id)
    # A batch allocates ~100 short-lived objects per household, all freed by reference
    # counting when it ends; while it runs they are alive, so the collector, triggered by
    # allocation counts, keeps scanning them (and promoting them) to find no garbage. This is
    # a process of its own: freeze what exists (without a full collection first: it would
    # walk every module the command imported, for a few objects), and collect between
    # batches only, when the young generations are nearly empty.
    gc.freeze()
    gc.disable()
    batches_run = 0
    parent = os.getppid()
    try:
        while True:
            # The next batch nobody took: a shared counter, not a queue (a queue's get_nowait
            # can report empty while the parent's feeder thread is still filling it, and a
            # process that believed it would quit at start, leaving one core idle).
            with taken.get_lock():
                position = int(taken.value)
                taken.value = position + 1
            if position >= len(pending):
                return
            computed = scorer.compute(pending[position])
            while True:  # at most a few batches wait for the writer (memory)
                if os.getppid() != parent:
                    return  # the command was killed: its writer is gone
                try:
                    results.put(computed, timeout=1.0)
                    break
                except queue.Full:
                    continue
            del computed
            batches_run += 1
            gc.collect(2 if batches_run % 50 == 0 else 1)
            if pause_s:
                time.sleep(pause_s)
    finally:
        stores.close()


def _run_parallel(
    settings: Settings,
    version: str,
    models_dir: Path | None,
    job_id: str,
    pending: list[PlannedBatch],
    workers: int,
    pause_s: float,
    wrote: Callable[[int, int], None],
) -> None:
    """Scoring processes compute, this process writes (as each batch arrives)."""
    # fork: the scoring processes start with the modules already imported (spawn would
    # re-import everything, seconds per process). No engine or key session is open in this
    # process at this point; each process opens its own, and the writer's are opened after
    # the fork.
    ctx: Any = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    taken = ctx.Value("q", 0)  # how many of ``pending`` the scoring processes have taken
    count = min(workers, len(pending))
    results = ctx.Queue(maxsize=2 * count)
    procs = [
        ctx.Process(
            target=_scoring_main,
            daemon=True,
            args=(settings, version, models_dir, job_id, pending, taken, results, pause_s),
        )
        for _ in range(count)
    ]
    for p in procs:
        p.start()
    stores: Stores | None = None
    writer: Writer | None = None
    try:
        stores = Stores(settings, version, models_dir)
        writer = Writer(stores, job_id)
        # As in the scoring processes: a batch arrives as some 100,000 objects, freed by
        # reference counting once written; collect between batches only.
        gc.freeze()
        gc.disable()
        received = 0
        while received < len(pending):
            try:
                computed: Computed = results.get(timeout=0.2)
            except queue.Empty:
                if any(p.exitcode not in (None, 0) for p in procs) or all(
                    p.exitcode is not None for p in procs
                ):
                    # A scoring process died (SIGKILL, out of memory), or all ended with
                    # batches missing: stop; the rerun resumes the job.
                    raise RescoreError(
                        "a rescoring process failed; run the same command again to resume"
                    ) from None
                continue
            received += 1
            wrote(computed.batch_no, writer.write(computed))
            del computed
            gc.collect(2 if received % 50 == 0 else 1)
    finally:
        gc.enable()
        gc.unfreeze()
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join()
        if writer is not None:
            writer.close()
        if stores is not None:
            stores.close()
